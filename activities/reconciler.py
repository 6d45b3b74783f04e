"""The reconciler's steps (`ReconcilerWorkflow`), one activity each; names in
domain.contracts (`RECONCILER_STEPS`). Each step is bounded (a batch per run), safe to run twice
at once, and reports its findings: a `StepReport`, the counter `billing_reconciler_findings`
(label `finding`) and a log line per kind.

- expired holds: holds past max call duration + grace are released (ledger.holds);
- pending refunds: a refund `pending` for a while whose `RefundWorkflow` is closed or missing is
  started again (every step of it is idempotent on the refund id);
- stuck emails: sends left `sending` past their lease (the sender died) are sent again from the
  stored message (at least once after a crash);
- alert outbox: low-balance crossings not delivered a while after they were recorded or last
  handed over are handed to the account workflow again;
- idempotency records: older than 24 h are pruned (an in-flight claim older than its lease is
  taken over by its retry: ledger.idempotency).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy

from activities.accounts import resend_stuck
from activities.alerts import AlertPublisher
from activities.deps import WorkerDeps, workflow_running
from core.metrics import record_reconciler_finding
from db.session import run_in_transaction
from domain.contracts import (
    DELIVER_ALERT_OUTBOX_STEP,
    PRUNE_IDEMPOTENCY_STEP,
    RECLAIM_STUCK_EMAILS_STEP,
    REDRIVE_PENDING_REFUNDS_STEP,
    REFUND_WORKFLOW,
    RELEASE_EXPIRED_HOLDS_STEP,
    refund_workflow_id,
)
from domain.contracts.reconciler import StepReport
from domain.contracts.refunds import RefundInput
from ledger import alerts, email_log, holds, idempotency
from ledger import refunds as ledger_refunds
from ledger.posting import utcnow

log = logging.getLogger("billing.reconciler")
T = TypeVar("T")


@dataclass(frozen=True)
class ReconcilerLimits:
    refund_pending_after: timedelta = timedelta(minutes=2)
    email_lease: timedelta = email_log.SENDING_LEASE
    alert_grace: timedelta = timedelta(minutes=1)
    idempotency_retention: timedelta = idempotency.RETENTION
    batch: int = 100


@dataclass(frozen=True)
class _PendingRefund:
    refund_id: str
    account_id: str
    amount_paisa: int


def _report(step: str, findings: dict[str, int]) -> StepReport:
    """The step's report, its metric and its log line."""
    found = {kind: count for kind, count in findings.items() if count}
    for kind, count in found.items():
        record_reconciler_finding(kind, count)  # never raises: metrics never break the reconciler
    if found:
        log.warning("reconciler %s found %s", step, found, extra={"findings": found})
    return StepReport(step=step, findings=found)


class ReconcilerActivities:
    def __init__(self, deps: WorkerDeps, limits: ReconcilerLimits | None = None) -> None:
        self.deps = deps
        self.limits = limits or ReconcilerLimits()
        self.alerts = AlertPublisher(deps.session_factory, deps.client, task_queue=deps.task_queue)

    async def _tx(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(run_in_transaction, self.deps.session_factory, work)

    @activity.defn(name=RELEASE_EXPIRED_HOLDS_STEP)
    async def release_expired_holds(self) -> StepReport:
        released = await self._tx(lambda s: holds.release_stale_holds(s, limit=self.limits.batch))
        return _report(RELEASE_EXPIRED_HOLDS_STEP, {"expired_hold_paisa_released": released})

    @activity.defn(name=REDRIVE_PENDING_REFUNDS_STEP)
    async def redrive_pending_refunds(self) -> StepReport:
        def stale(session: Session) -> list[_PendingRefund]:
            rows = ledger_refunds.stale_pending_refunds(
                session, older_than=self.limits.refund_pending_after, limit=self.limits.batch
            )
            return [_PendingRefund(r.id, r.account_id, r.amount_paisa) for r in rows]

        redriven = 0
        for refund in await self._tx(stale):
            if await workflow_running(self.deps.client, refund_workflow_id(refund.refund_id)):
                continue  # still at it (a slow gateway): not a finding
            await self.deps.client.start_workflow(
                REFUND_WORKFLOW,
                RefundInput(refund.refund_id, refund.account_id, refund.amount_paisa),
                id=refund_workflow_id(refund.refund_id),
                task_queue=self.deps.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            log.warning("refund %s was pending with no workflow: started again", refund.refund_id)
            redriven += 1
        return _report(REDRIVE_PENDING_REFUNDS_STEP, {"refund_redriven": redriven})

    @activity.defn(name=RECLAIM_STUCK_EMAILS_STEP)
    async def reclaim_stuck_emails(self) -> StepReport:
        lease = self.limits.email_lease
        stuck = await self._tx(
            lambda s: email_log.reclaim_stuck(s, lease=lease, limit=self.limits.batch)
        )
        resent = 0
        for send in stuck:
            if await resend_stuck(self.deps.session_factory, self.deps.email_sender, send):
                resent += 1
        unrecoverable = await self._tx(lambda s: email_log.count_unrecoverable(s, lease=lease))
        return _report(
            RECLAIM_STUCK_EMAILS_STEP,
            {
                "email_resent": resent,
                "email_resend_failed": len(stuck) - resent,
                "email_stuck_without_message": unrecoverable,
            },
        )

    @activity.defn(name=DELIVER_ALERT_OUTBOX_STEP)
    async def deliver_alert_outbox(self) -> StepReport:
        due = await self._tx(
            lambda s: alerts.alerts_due(
                s, utcnow(), grace=self.limits.alert_grace, limit=self.limits.batch
            )
        )
        accepted = await self.alerts.publish(due)
        return _report(
            DELIVER_ALERT_OUTBOX_STEP,
            {"alert_redelivered": len(accepted), "alert_handover_failed": len(due) - len(accepted)},
        )

    @activity.defn(name=PRUNE_IDEMPOTENCY_STEP)
    async def prune_idempotency_records(self) -> StepReport:
        pruned = await self._tx(
            lambda s: idempotency.prune(s, retention=self.limits.idempotency_retention)
        )
        # Routine housekeeping, not a discrepancy: logged, not counted as a finding.
        if pruned:
            log.info("pruned %d idempotency records", pruned)
        findings = {"idempotency_pruned": pruned} if pruned else {}
        return StepReport(step=PRUNE_IDEMPOTENCY_STEP, findings=findings)

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.release_expired_holds,
            self.redrive_pending_refunds,
            self.reclaim_stuck_emails,
            self.deliver_alert_outbox,
            self.prune_idempotency_records,
        ]
