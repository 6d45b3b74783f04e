"""A call's usage as `CallBillingWorkflow` keeps it: what the ledger has confirmed (its totals
and event count, from the last checkpoint) and the accepted events it does not have yet.

The ledger's unique (call_id, event_id) is the call's dedupe across runs; the workflow keeps
only this run's event ids (an event repeated within a run is caught at once, one repeated from
an earlier run when the next checkpoint reports it as a duplicate, which also corrects the
totals). Deterministic, no I/O: a helper of the workflow, not a workflow."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts.call_usage import CheckpointedUsage, events_from_json
from domain.contracts.calls import CallCarry
from domain.rating import UsageEvent, UsageLine, UsageTotals

# Event id prefix of the usage a run from before the ledger kept usage handed over in its carry
# (totals, not events): recorded as one synthetic event per usage line.
LEGACY_CARRY_EVENT_PREFIX = "carried-usage:"


@dataclass
class UsageBook:
    confirmed: UsageTotals = field(default_factory=UsageTotals)  # the ledger's (or legacy) totals
    confirmed_count: int = 0
    pending: list[UsageEvent] = field(default_factory=list)  # accepted, not checkpointed yet
    seen: set[str] = field(default_factory=set)  # this run's event ids
    duplicate_event_count: int = 0
    # Σ of `pending`, kept as events arrive: `status` stays cheap with thousands pending.
    pending_totals: UsageTotals = field(default_factory=UsageTotals)

    def __post_init__(self) -> None:
        self._retotal_pending()

    def _retotal_pending(self) -> None:
        self.pending_totals = UsageTotals()
        for event in self.pending:
            self.pending_totals.add(event)

    def add_pending(self, event: UsageEvent) -> None:
        self.pending.append(event)
        self.pending_totals.add(event)

    @classmethod
    def from_carry(cls, carry: CallCarry | None) -> UsageBook:
        if carry is None:
            return cls()
        pending = events_from_json(carry.pending_events_json)
        seen = {event.event_id for event in pending} | set(carry.recent_event_ids)
        return cls(
            confirmed=carry.usage,
            confirmed_count=carry.usage_event_count,
            pending=pending,
            seen=seen,
            duplicate_event_count=carry.duplicate_event_count,
        )

    def adopt_legacy_totals(self) -> None:
        """A carry from a run that priced its own totals: hand them to the ledger as events."""
        for index, line in enumerate(self.confirmed.lines):
            self.add_pending(
                UsageEvent(
                    event_id=f"{LEGACY_CARRY_EVENT_PREFIX}{index}",
                    component=line.component,
                    sku=line.sku,
                    quantities={line.unit: line.quantity},
                )
            )
        self.confirmed = UsageTotals()

    def lines(self) -> list[UsageLine]:
        """Usage so far: confirmed plus pending (a pending repeat of an earlier run's event is
        counted until the next checkpoint drops it)."""
        if not self.pending:
            return list(self.confirmed.lines)
        totals = UsageTotals([UsageLine(**line.__dict__) for line in self.confirmed.lines])
        totals.merge(self.pending_totals)
        return totals.lines

    @property
    def event_count(self) -> int:
        return self.confirmed_count + len(self.pending)

    def confirm(
        self, checkpointed: int, usage: list[UsageLine], event_count: int, duplicates: int
    ) -> None:
        """The first `checkpointed` pending events are in the ledger, which now has `usage`."""
        del self.pending[:checkpointed]
        self._retotal_pending()  # what arrived while the checkpoint ran
        self.confirmed = UsageTotals(list(usage))
        self.confirmed_count = event_count
        self.duplicate_event_count += duplicates

    def confirm_checkpoint(self, checkpointed: int, result: CheckpointedUsage) -> None:
        self.confirm(
            checkpointed,
            result.usage,
            result.usage_event_count,
            len(result.duplicate_event_ids),
        )
