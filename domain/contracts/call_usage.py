"""The shapes of a call's usage kept in the ledger: checkpoints of a running call, the void of
an authorize that failed, late usage after the call ended (`CallLateUsageWorkflow`) and the
sweep of calls whose workflow is gone. JSON friendly: ints, strings, lists, dataclasses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.contracts.calls import CallBreakdown
from domain.rating import UsageEvent, UsageLine


def events_to_json(events: Sequence[UsageEvent]) -> str:
    """Validated events as one JSON text, the way payloads carry them. The converter encodes a
    dataclass with `dataclasses.asdict`, which walks every nested object in Python (in the
    workflow sandbox ~0.3 ms an event) and decodes each item's type hints on the way back; a
    checkpoint after an outage, or a continue-as-new carry, may hold thousands of events and
    would trip the workflow's deadlock detector. One string costs nothing to copy."""
    return json.dumps(
        [
            [event.event_id, event.component, event.sku, event.quantities, event.occurred_at]
            for event in events
        ],
        separators=(",", ":"),
    )


def events_from_json(text: str) -> list[UsageEvent]:
    if not text:
        return []
    return [
        UsageEvent(
            event_id=event_id,
            component=component,
            sku=sku,
            quantities=dict(quantities),
            occurred_at=occurred_at,
        )
        for event_id, component, sku, quantities, occurred_at in json.loads(text)
    ]


@dataclass(frozen=True)
class UsageCheckpoint:
    """`call_checkpoint`'s input: validated usage events the ledger does not have yet."""

    call_id: str
    batch: str  # `<run_id>:<n>`, recorded on the events: a retried attempt recognizes its rows
    events_json: str  # `events_to_json`

    def usage_events(self) -> list[UsageEvent]:
        return events_from_json(self.events_json)


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
    """`reconcile_orphaned_calls`' input (optional: the reconciler's run passes none): ledger
    calls still active whose row has not changed for `min_age_seconds` (a live call's changes
    with each usage checkpoint), at most `limit` of them, longest idle first. It reports a
    `reconciler.StepReport`."""

    min_age_seconds: int = 60
    limit: int = 500
    call_ids: list[str] | None = None  # only these calls (ops reconciling particular calls)
