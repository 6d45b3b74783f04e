"""The API's call into the one balance-change publisher, `adapters.balance_events`, with this
app's Temporal client and task queue (best effort; it never raises)."""

from __future__ import annotations

from adapters.balance_events import notify_balance_changed
from api.deps import BillingState
from domain.balance_rules import below_alert_threshold
from domain.ledger_types import BalanceSnapshot


async def balance_changed(state: BillingState, snapshot: BalanceSnapshot) -> None:
    await notify_balance_changed(
        state.temporal_client, snapshot, task_queue=state.settings.task_queue
    )


async def balance_dropped(
    state: BillingState, available_before_paisa: int, snapshot: BalanceSnapshot
) -> None:
    """After a debit: the account workflow alerts on a drop below the alert threshold (credits,
    which re-arm it, always report), so a debit reports only when it crosses the threshold;
    every other charge leaves Temporal alone."""
    threshold = snapshot.alert_threshold_paisa
    if snapshot.below_alert_threshold and not below_alert_threshold(
        available_paisa=available_before_paisa, alert_threshold_paisa=threshold
    ):
        await balance_changed(state, snapshot)
