"""The API's call into the one balance-change publisher, `adapters.balance_events`, with this
app's Temporal client and task queue (best effort; it never raises)."""

from __future__ import annotations

from adapters.balance_events import notify_balance_changed
from api.deps import BillingState
from domain.ledger_types import BalanceSnapshot


async def balance_changed(state: BillingState, snapshot: BalanceSnapshot) -> None:
    await notify_balance_changed(
        state.temporal_client, snapshot, task_queue=state.settings.task_queue
    )
