"""`reconcile_orphaned_calls`: ledger calls still active whose workflow is closed or missing
(terminated, reset away, lost with its history) are finalized as `abandoned`, charging the usage
their checkpoints recorded and releasing their holds (contract §3, "nothing is lost when a
workflow is"). The first step of the reconciler's runs (`RECONCILER_STEPS`); safe to run
anywhere, any number of times: the ledger's finalization is first-wins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session
from temporalio import activity

from activities.alerts import AlertPublisher
from activities.deps import WorkerDeps, workflow_running
from core.metrics import record_reconciler_finding
from db.session import run_in_transaction
from domain.contracts import RECONCILE_ORPHANED_CALLS_ACTIVITY, call_workflow_id
from domain.contracts.call_usage import OrphanSweep
from domain.contracts.reconciler import StepReport
from domain.ledger_types import FinalizedCall
from ledger import call_usage as ledger_usage
from ledger import calls as ledger_calls
from ledger.posting import utcnow
from ledger.repositories import call_usage as usage_rows

log = logging.getLogger("billing.reconciler")
# Counted, but not findings worth a metric or a warning: the calls looked at.
_ROUTINE = {"active_call_checked"}


def _report(findings: dict[str, int]) -> StepReport:
    """The step's report, its metric and its log line (as activities.reconciler's steps)."""
    found = {kind: count for kind, count in findings.items() if count}
    for kind, count in found.items():
        if kind not in _ROUTINE:
            record_reconciler_finding(kind, count)
    if set(found) - _ROUTINE:
        log.warning("reconciler %s found %s", RECONCILE_ORPHANED_CALLS_ACTIVITY, found)
    return StepReport(step=RECONCILE_ORPHANED_CALLS_ACTIVITY, findings=found)


def _finalize_if_active(session: Session, *, call_id: str) -> FinalizedCall | None:
    """The orphan's finalization, or None when its workflow finalized it meanwhile."""
    _, call = ledger_usage.lock_call(session, call_id)
    if call.status != "active":
        return None
    return ledger_calls.finalize_orphaned_call(session, call_id)


class OrphanedCallActivities:
    def __init__(self, deps: WorkerDeps) -> None:
        self.deps = deps
        self.alerts = AlertPublisher(deps.session_factory, deps.client, task_queue=deps.task_queue)

    @activity.defn(name=RECONCILE_ORPHANED_CALLS_ACTIVITY)
    async def reconcile_orphaned_calls(self, sweep: OrphanSweep | None = None) -> StepReport:
        """A reconciler step (`RECONCILER_STEPS`); findings: `orphaned_call_finalized`,
        `orphaned_call_paisa_charged`, and `orphaned_call_failed` (retried next run)."""
        sweep = sweep or OrphanSweep()
        factory = self.deps.session_factory
        before = utcnow() - timedelta(seconds=sweep.min_age_seconds)
        call_ids = await asyncio.to_thread(
            run_in_transaction,
            factory,
            lambda s: usage_rows.active_calls_idle_since(s, before, sweep.limit, sweep.call_ids),
        )
        findings = {
            "active_call_checked": len(call_ids),
            "orphaned_call_finalized": 0,
            "orphaned_call_paisa_charged": 0,
            "orphaned_call_failed": 0,
        }
        for call_id in call_ids:
            activity.heartbeat(call_id)
            try:
                if await workflow_running(self.deps.client, call_workflow_id(call_id)):
                    continue
                result = await asyncio.to_thread(
                    run_in_transaction, factory, partial(_finalize_if_active, call_id=call_id)
                )
            except Exception:
                findings["orphaned_call_failed"] += 1
                log.exception("orphaned call %s not reconciled; the next run retries", call_id)
                continue
            if result is None:
                continue  # its workflow finalized it meanwhile
            findings["orphaned_call_finalized"] += 1
            findings["orphaned_call_paisa_charged"] += result.breakdown.total_paisa
            log.warning(
                "call %s finalized as abandoned: its workflow is closed or missing "
                "(charged %d paisa)",
                call_id,
                result.breakdown.total_paisa,
            )
            await self.alerts.after_commit(result.balance)
        return _report(findings)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.reconcile_orphaned_calls]
