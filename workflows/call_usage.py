"""A call's usage as `CallBillingWorkflow` keeps it: what the ledger has confirmed (its totals
and event count, from the last checkpoint) and the accepted events it does not have yet.

The ledger's unique (call_id, event_id) is the call's dedupe across runs; the workflow keeps
only this run's event ids (an event repeated within a run is caught at once, one repeated from
an earlier run when the next checkpoint reports it as a duplicate, which also corrects the
totals). Deterministic, no I/O: a helper of the workflow, not a workflow."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts.call_usage import CheckpointedUsage, event_from_plain
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

    @classmethod
    def from_carry(cls, carry: CallCarry | None) -> UsageBook:
        if carry is None:
            return cls()
        pending = [event_from_plain(event) for event in carry.pending_events]
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
            self.pending.append(
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
        for event in self.pending:
            totals.add(event)
        return totals.lines

    @property
    def event_count(self) -> int:
        return self.confirmed_count + len(self.pending)

    def confirm(
        self, checkpointed: int, usage: list[UsageLine], event_count: int, duplicates: int
    ) -> None:
        """The first `checkpointed` pending events are in the ledger, which now has `usage`."""
        del self.pending[:checkpointed]
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
