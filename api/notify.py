"""Best-effort balance-change notification after a committed ledger change."""

from __future__ import annotations

import asyncio
import logging

from api.deps import BillingState
from domain.ledger_types import BalanceSnapshot
from notifications.balance import notify_balance_changed

log = logging.getLogger("api.notify")


async def balance_changed(state: BillingState, snapshot: BalanceSnapshot) -> None:
    if state.temporal_client is None:
        return
    try:
        await asyncio.wait_for(
            notify_balance_changed(
                state.temporal_client, snapshot, task_queue=state.settings.task_queue
            ),
            5.0,
        )
    except Exception:  # the ledger is committed; the account workflow catches up later
        log.warning("balance notification failed for %s", snapshot.account_id, exc_info=True)
