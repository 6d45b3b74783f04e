"""After the API commits a balance change: hand the low-balance crossing it recorded (if any)
to `AccountWorkflow` through the one publisher, `adapters.balance_events` (the worker's side is
activities.alerts). Never raises: what is not delivered now stays in the alert outbox, where the
reconciler finds it."""

from __future__ import annotations

import logging

from adapters.balance_events import publish_low_balance_alerts
from api.deps import BillingState, run_db
from domain.contracts.accounts import LowBalanceAlert
from domain.ledger_types import BalanceSnapshot
from ledger import alerts

log = logging.getLogger("api.notify")


async def balance_changed(state: BillingState, snapshot: BalanceSnapshot) -> None:
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


async def alerts_recorded(state: BillingState, recorded: list[LowBalanceAlert]) -> None:
    """The crossings a committed change recorded (the osmAPI hot path knows them: no outbox read;
    every other charge leaves Temporal alone). Never raises: what is not delivered now stays in
    the outbox for the reconciler."""
    if state.temporal_client is None or not recorded:
        return
    await publish_low_balance_alerts(
        state.temporal_client, recorded, task_queue=state.settings.task_queue
    )
