"""Activities of `CallBillingWorkflow` and `CallLateUsageWorkflow`: the ledger's authorize,
usage checkpoint, finalize, void and late usage, each one transaction. All are idempotent in the
ledger (on call_id, on (call_id, event_id)), so a retry (or a new worker after a crash between
commit and completion) finds its own rows and changes nothing.

Authorize, checkpoint and finalize (every call's transactions) run on the worker's async pool,
on its event loop, as the API runs osmAPI charges; their rare cases, and everything when the
worker has no pool, go through a Session on a thread (`call_ledger_transaction`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.alerts import AlertPublisher
from activities.deps import WorkerDeps
from core.logging import set_log_context
from db.async_pool import AsyncPool, run_in_async_transaction
from db.session import run_in_transaction
from domain.contracts import (
    CALL_AUTHORIZE_ACTIVITY,
    CALL_CHECKPOINT_ACTIVITY,
    CALL_FINALIZE_ACTIVITY,
    CALL_LATE_USAGE_ACTIVITY,
    CALL_VOID_ACTIVITY,
)
from domain.contracts.call_usage import (
    CallVoid,
    CheckpointedUsage,
    LateUsage,
    LateUsageResult,
    UsageCheckpoint,
)
from domain.contracts.calls import AuthorizeCallInput, CallAuthorization
from domain.ledger_types import BalanceSnapshot, FinalizeCallRequest, FinalizedCall
from ledger import call_usage as ledger_usage
from ledger import calls as ledger_calls
from ledger.errors import BillingError
from ledger.posting import snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


async def call_ledger_transaction(
    pool: AsyncPool | None,
    factory: sessionmaker[Session],
    hot: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T | None]],
    cold: Callable[[Session], T],
) -> T:
    """One of a call's ledger transactions: `hot` (plain statements) on the async pool, on the
    event loop; when it answers None (it wrote nothing: housekeeping is due, the call was
    finalized already, an auto-recharge checkout is to be recorded) or there is no pool, `cold`
    through a Session on a thread. Both retry conflicts; other errors are Temporal's to retry."""
    if pool is not None:
        result = await run_in_async_transaction(pool, hot)
        if result is not None:
            return result
    return await asyncio.to_thread(run_in_transaction, factory, cold)


def _business_error(exc: BillingError) -> ApplicationError:
    # A business refusal is final: retrying cannot change it.
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


class CallActivities:
    def __init__(self, deps: WorkerDeps) -> None:
        self.deps = deps
        self.alerts = AlertPublisher(deps.session_factory, deps.client, task_queue=deps.task_queue)

    async def _transaction(
        self,
        work: Callable[[Session], T],
        hot: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T | None]] | None = None,
    ) -> T:
        """One ledger transaction: `hot` on the pool when there is one (see
        `call_ledger_transaction`), else `work` through a Session on a thread."""
        factory = self.deps.session_factory
        try:
            if hot is None:
                return await asyncio.to_thread(run_in_transaction, factory, work)
            return await call_ledger_transaction(self.deps.ledger_pool, factory, hot, work)
        except BillingError as exc:
            raise _business_error(exc) from exc
        except (DBAPIError, psycopg.Error):
            log.exception("ledger transaction failed; Temporal retries it")
            raise

    @activity.defn(name=CALL_AUTHORIZE_ACTIVITY)
    async def authorize(self, request: AuthorizeCallInput) -> CallAuthorization:
        set_log_context(call_id=request.call_id, account_id=request.account_id)
        arguments: dict[str, Any] = {
            "call_id": request.call_id,
            "account_id": request.account_id,
            "channel": request.channel,
            "started_at": request.started_at,
        }
        decision = await self._transaction(
            lambda s: ledger_calls.authorize_call(
                s, self.deps.policy, **arguments, ends_transaction=True
            ),
            lambda conn: ledger_calls.authorize_call_async(conn, self.deps.policy, **arguments),
        )
        return CallAuthorization(
            # Recorded in the call's history: not the balance, which the workflow never reads.
            decision=replace(decision, balance=None),
            max_duration_seconds=int(self.deps.policy.max_call_duration.total_seconds()),
        )

    @activity.defn(name=CALL_CHECKPOINT_ACTIVITY)
    async def checkpoint(self, request: UsageCheckpoint) -> CheckpointedUsage:
        set_log_context(call_id=request.call_id)
        done = await self._transaction(
            lambda s: ledger_usage.checkpoint_usage(s, request, ends_transaction=True),
            lambda conn: ledger_usage.checkpoint_usage_async(conn, request),
        )
        if done.result.finalized:  # charged as late usage: a debit, maybe a crossing of each kind
            await self.alerts.after_commit(done.balance)
        elif done.recharge_recorded:  # the raised hold crossed the auto-recharge threshold
            await self.alerts.hand_over_recharges(done.balance.account_id)
        return done.result

    @activity.defn(name=CALL_FINALIZE_ACTIVITY)
    async def finalize(self, request: FinalizeCallRequest) -> FinalizedCall:
        set_log_context(call_id=request.call_id)
        finalized = await self._transaction(
            lambda s: ledger_calls.finalize_call(s, request, ends_transaction=True),
            lambda conn: ledger_calls.finalize_call_async(conn, request),
        )
        # A low-balance crossing this charge caused is in the outbox (same transaction).
        await self.alerts.after_commit(finalized.balance)
        # Recorded in the call's history: the balance was for the alert, not the workflow.
        return replace(finalized, balance=None)

    @activity.defn(name=CALL_VOID_ACTIVITY)
    async def void(self, request: CallVoid) -> None:
        set_log_context(call_id=request.call_id)
        voided = await self._transaction(
            lambda s: ledger_calls.void_call(s, request.call_id, request.reason)
        )
        if voided:
            log.warning("call %s voided: %s", request.call_id, request.reason)

    @activity.defn(name=CALL_LATE_USAGE_ACTIVITY)
    async def late_usage(self, request: LateUsage) -> LateUsageResult:
        set_log_context(call_id=request.call_id)

        def work(session: Session) -> tuple[LateUsageResult, BalanceSnapshot]:
            result, account = ledger_usage.report_late_usage(
                session,
                request.call_id,
                request.events,
                window=self.deps.policy.late_usage_window,
                batch=request.batch,
            )
            return result, snapshot(account)

        result, balance = await self._transaction(work)
        await self.alerts.after_commit(balance)  # the adjustment's crossing, if it made one
        return result

    def activities(self) -> list[Callable[..., Any]]:
        return [self.authorize, self.checkpoint, self.finalize, self.void, self.late_usage]
