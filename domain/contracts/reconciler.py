"""`ReconcilerWorkflow`'s shapes: its input (the steps of a run, set by the Schedule) and what
each step activity reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts import RECONCILER_STEPS


@dataclass
class ReconcilerInput:
    steps: list[str] = field(default_factory=lambda: list(RECONCILER_STEPS))


@dataclass
class StepReport:
    """What one step found and did: `findings` counts by kind (e.g. `refund_redriven`); a step
    that failed for good carries its error and no findings."""

    step: str
    findings: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class ReconcilerResult:
    steps: list[StepReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(report.error is None for report in self.steps)
