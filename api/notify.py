"""After the API commits a balance change: hand the low-balance crossing it recorded (if any)
to `AccountWorkflow` through the one publisher, `adapters.balance_events` (the worker's side is
activities.alerts). Never raises: what is not delivered now stays in the alert outbox, where the
reconciler finds it."""

from __future__ import annotations

import logging

from adapters.balance_events import publish_low_balance_alerts
from adapters.checkout_events import start_auto_recharges
from api.deps import BillingState, run_db
from domain.contracts.accounts import LowBalanceAlert
from domain.ledger_types import BalanceSnapshot
from ledger import alerts, auto_recharge

log = logging.getLogger("api.notify")


async def balance_changed(state: BillingState, snapshot: BalanceSnapshot) -> None:
    if snapshot.below_auto_recharge_threshold:
        await _hand_over_recharges(state, snapshot.account_id)
    # Only a balance below its threshold can have a crossing: credits and most debits cost
    # nothing here.
    if state.temporal_client is None or not snapshot.below_alert_threshold:
        return
    try:
        pending = await run_db(
            state.session_factory, lambda s: alerts.undelivered_alerts(s, snapshot.account_id)
        )
    except Exception:
        log.warning("alert outbox of %s not read", snapshot.account_id, exc_info=True)
        return
    await publish_low_balance_alerts(
        state.temporal_client, pending, task_queue=state.settings.task_queue
    )


async def _hand_over_recharges(state: BillingState, account_id: str) -> None:
    """An auto-recharge crossing the change recorded (ledger.recharge_crossings) goes to its
    workflow now; never raises (it stays recorded for the next change)."""
    try:
        pending = await run_db(
            state.session_factory, lambda s: auto_recharge.undelivered(s, account_id)
        )
    except Exception:
        log.warning("auto-recharges of %s not read", account_id, exc_info=True)
        return
    await start_auto_recharges(state.temporal_client, pending, task_queue=state.settings.task_queue)


async def alerts_recorded(state: BillingState, recorded: list[LowBalanceAlert]) -> None:
    """The crossings a committed change recorded (the osmAPI hot path knows them: no outbox read;
    every other charge leaves Temporal alone). Never raises: what is not delivered now stays in
    the outbox for the reconciler."""
    if state.temporal_client is None or not recorded:
        return
    await publish_low_balance_alerts(
        state.temporal_client, recorded, task_queue=state.settings.task_queue
    )


async def recharges_recorded(state: BillingState, account_ids: list[str]) -> None:
    """Accounts whose change recorded an auto-recharge crossing: hand it over now."""
    for account_id in account_ids:
        await _hand_over_recharges(state, account_id)
