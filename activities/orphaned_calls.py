"""`reconcile_orphaned_calls`: ledger calls still active whose workflow is closed or missing
(terminated, reset away, lost with its history) are finalized as `abandoned`, charging the usage
their checkpoints recorded and releasing their holds (contract §3, "nothing is lost when a
workflow is"). The reconciler's schedule runs it; it is safe to run anywhere, any number of
times: the ledger's finalization is first-wins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.deps import WorkerDeps
from db.session import run_in_transaction
from domain.contracts import RECONCILE_ORPHANED_CALLS_ACTIVITY, call_workflow_id
from domain.contracts.call_usage import OrphanSweep, OrphanSweepReport
from domain.ledger_types import FinalizedCall
from ledger import call_usage as ledger_usage
from ledger import calls as ledger_calls
from ledger.posting import utcnow
from ledger.repositories import call_usage as usage_rows

log = logging.getLogger(__name__)


def _finalize_if_active(session: Session, *, call_id: str) -> FinalizedCall | None:
    """The orphan's finalization, or None when its workflow finalized it meanwhile."""
    _, call = ledger_usage.lock_call(session, call_id)
    if call.status != "active":
        return None
    return ledger_calls.finalize_orphaned_call(session, call_id)


class OrphanedCallActivities:
    def __init__(self, deps: WorkerDeps) -> None:
        self.deps = deps

    async def _workflow_running(self, call_id: str) -> bool:
        """Whether the call's workflow (its latest run) is still running; False when it is
        closed or Temporal has no such workflow."""
        handle = self.deps.client.get_workflow_handle(call_workflow_id(call_id))
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING

    @activity.defn(name=RECONCILE_ORPHANED_CALLS_ACTIVITY)
    async def reconcile_orphaned_calls(self, sweep: OrphanSweep) -> OrphanSweepReport:
        factory = self.deps.session_factory
        before = utcnow() - timedelta(seconds=sweep.min_age_seconds)
        call_ids = await asyncio.to_thread(
            run_in_transaction,
            factory,
            lambda s: usage_rows.active_calls_created_before(
                s, before, sweep.limit, sweep.call_ids
            ),
        )
        running = failed = charged = 0
        finalized: list[str] = []
        for call_id in call_ids:
            try:
                if await self._workflow_running(call_id):
                    running += 1
                    continue
                result = await asyncio.to_thread(
                    run_in_transaction, factory, partial(_finalize_if_active, call_id=call_id)
                )
            except Exception:
                failed += 1
                log.exception("orphaned call %s not reconciled; the next sweep retries", call_id)
                continue
            if result is not None:
                finalized.append(call_id)
                charged += result.breakdown.total_paisa
                log.warning(
                    "call %s finalized as abandoned: its workflow is closed or missing "
                    "(charged %d paisa)",
                    call_id,
                    result.breakdown.total_paisa,
                )
            activity.heartbeat(call_id)
        return OrphanSweepReport(
            checked=len(call_ids),
            running=running,
            finalized=len(finalized),
            charged_paisa=charged,
            failed=failed,
            call_ids=finalized,
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.reconcile_orphaned_calls]
