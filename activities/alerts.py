"""Hand a committed low-balance crossing to `AccountWorkflow` right after the commit: the
worker's side of the alert outbox (the API's is api.notify)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from adapters.balance_events import publish_low_balance_alerts
from adapters.checkout_events import start_auto_recharges
from domain.contracts.accounts import LowBalanceAlert
from domain.ledger_types import BalanceSnapshot
from ledger import alerts, auto_recharge

log = logging.getLogger(__name__)


class AlertPublisher:
    def __init__(
        self, session_factory: sessionmaker[Session], client: Client, *, task_queue: str
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.task_queue = task_queue

    async def after_commit(self, snapshot: BalanceSnapshot | None) -> None:
        """After a committed balance change: deliver the crossing it recorded, if any. Only a
        balance below its threshold can have one, so other changes cost nothing. Never raises:
        what is not delivered now stays in the outbox for the reconciler."""
        if snapshot is not None and snapshot.below_auto_recharge_threshold:
            await self.hand_over_recharges(snapshot.account_id)
        if snapshot is None or not snapshot.below_alert_threshold:
            return
        try:
            pending = await asyncio.to_thread(self._undelivered, snapshot.account_id)
        except Exception:
            log.warning("alert outbox of %s not read", snapshot.account_id, exc_info=True)
            return
        await self.publish(pending)

    async def publish(self, pending: list[LowBalanceAlert]) -> list[str]:
        return await publish_low_balance_alerts(self.client, pending, task_queue=self.task_queue)

    def _undelivered(self, account_id: str) -> list[LowBalanceAlert]:
        with self.session_factory() as session:
            return alerts.undelivered_alerts(session, account_id)

    async def hand_over_recharges(self, account_id: str) -> None:
        """An auto-recharge crossing the change recorded (ledger.recharge_crossings) goes to
        its workflow now; never raises (it stays recorded for the next change)."""
        try:
            pending = await asyncio.to_thread(self._undelivered_recharges, account_id)
        except Exception:
            log.warning("auto-recharges of %s not read", account_id, exc_info=True)
            return
        await start_auto_recharges(self.client, pending, task_queue=self.task_queue)

    def _undelivered_recharges(self, account_id: str) -> list[str]:
        with self.session_factory() as session:
            return auto_recharge.undelivered(session, account_id)
