"""The shapes of a call's usage kept in the ledger: checkpoints of a running call, the void of
an authorize that failed, late usage after the call ended (`CallLateUsageWorkflow`) and the
sweep of calls whose workflow is gone. JSON friendly: ints, strings, lists, dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.contracts.calls import CallBreakdown
from domain.rating import UsageEvent, UsageLine


def event_to_plain(event: UsageEvent) -> dict[str, Any]:
    """A validated event as a plain object. Payloads carry events this way: the converter
    decodes a list of dataclasses at ~0.5 ms an item (type hints per item), plain objects at
    JSON speed, and a checkpoint after an outage may carry thousands."""
    return {
        "event_id": event.event_id,
        "component": event.component,
        "sku": event.sku,
        "quantities": event.quantities,
        "occurred_at": event.occurred_at,
    }


def event_from_plain(plain: dict[str, Any]) -> UsageEvent:
    return UsageEvent(
        event_id=plain["event_id"],
        component=plain["component"],
        sku=plain["sku"],
        quantities=dict(plain["quantities"]),
        occurred_at=plain.get("occurred_at"),
    )


@dataclass(frozen=True)
class UsageCheckpoint:
    """`call_checkpoint`'s input: validated usage events the ledger does not have yet
    (`event_to_plain`)."""

    call_id: str
    batch: str  # `<run_id>:<n>`, recorded on the events: a retried attempt recognizes its rows
    events: list[dict[str, Any]]

    def usage_events(self) -> list[UsageEvent]:
        return [event_from_plain(event) for event in self.events]


@dataclass(frozen=True)
class CheckpointedUsage:
    """`call_checkpoint`'s result: the call's usage as the ledger has it afterwards, and the
    hold that now covers it."""

    usage: list[UsageLine]
    usage_event_count: int  # distinct events recorded for the call, whole call
    duplicate_event_ids: list[str]  # already recorded before (an earlier run saw them)
    running_total_paisa: int
    hold_paisa: int
    finalized: bool = False  # the call had already been finalized: the events were late usage


@dataclass(frozen=True)
class CallVoid:
    """`call_void`'s input: finalize an authorization nobody could confirm as refused."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class LateUsage:
    """`call_late_usage`'s input: usage events (as the signal carries them) for a call that is
    already finalized."""

    call_id: str
    batch: str
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class LateUsageResult:
    """What late usage did (the `late_usage` update's result): the call re-priced over all its
    usage, the difference posted as one `call_adjustment` (none when nothing new)."""

    call_id: str
    accepted: int  # new events recorded
    duplicate_event_count: int  # events the ledger already had: changed nothing
    adjustment_paisa: int
    transaction_id: int | None
    breakdown: CallBreakdown
    usage: list[UsageLine] = field(default_factory=list)
    usage_event_count: int = 0


@dataclass(frozen=True)
class LateUsageStart:
    """`CallLateUsageWorkflow`'s input."""

    call_id: str


@dataclass(frozen=True)
class OrphanSweep:
    """`reconcile_orphaned_calls`' input: ledger calls still active, older than `min_age_seconds`
    (their workflow had time to start), at most `limit` of them, oldest first."""

    min_age_seconds: int = 60
    limit: int = 500


@dataclass(frozen=True)
class OrphanSweepReport:
    checked: int  # active ledger calls looked at
    running: int  # their workflow is running: left alone
    finalized: int  # workflow closed or missing: finalized as abandoned
    charged_paisa: int  # what those finalizations charged
    failed: int = 0  # could not be checked or finalized this time (retried next sweep)
    call_ids: list[str] = field(default_factory=list)  # the calls finalized
