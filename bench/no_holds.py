"""The billed workflow with running holds turned off, for measuring what they cost.

`NoHoldsCallWorkflow` is `CallBillingWorkflow` whose usage checkpoint never comes due: no
`call_checkpoint` local activity, no checkpoint timer, no wake-up per usage signal. The hold
stays at the authorization's minimum balance and all usage is priced by the one finalize
activity at hangup, as before issue 12. Everything else (authorize, dedupe, finalize, late
usage, balance notification) is the production code, with the production activities against
the same database, so billed ÷ billed-without-holds at the same load is the cost of running
holds and durable usage.

Same workflow type name, so the same `BillingClient` drives it; only the task queue differs.
Run its worker with `python -m bench.no_holds` (the billing worker's environment: DATABASE_URL,
TEMPORAL_ADDRESS, WORKFLOW_SANDBOX, ...); the stack starts it (bench.stack).
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

# Not passed through: the sandbox re-imports the workflow's module as it does for the worker
# (its own pass-through imports are what make its types resolvable inside the sandbox).
from workflows.calls import CallBillingWorkflow

with workflow.unsafe.imports_passed_through():
    from domain.contracts import CALL_WORKFLOW, TASK_QUEUE
    from domain.contracts.calls import CallInput, CallResult

if TYPE_CHECKING:  # not imported at run time: the sandbox re-imports this module
    from sqlalchemy.orm import Session, sessionmaker

    from adapters.email.sender import EmailSender
    from db.async_pool import AsyncPool

NO_HOLDS_TASK_QUEUE = "bench-billed-no-holds"


@workflow.defn(name=CALL_WORKFLOW)
class NoHoldsCallWorkflow(CallBillingWorkflow):
    @workflow.run
    async def run(self, input: CallInput) -> CallResult:  # the SDK wants it on the class
        return await super().run(input)

    def _checkpoint_due(self) -> datetime | None:
        return None  # usage stays pending until finalize prices it

    def _woken(self) -> bool:
        # The billed workflow also wakes for pending usage (to schedule its checkpoint); with
        # no checkpoint to schedule that would spin, so only the ends of the call wake it.
        return self._hangup is not None or self._deadline_passed or self._should_continue_as_new()


def build_no_holds_worker(
    client: Client,
    session_factory: sessionmaker[Session],
    *,
    task_queue: str = NO_HOLDS_TASK_QUEUE,
    activities_task_queue: str = TASK_QUEUE,
    email_sender: EmailSender | None = None,
    ledger_pool: AsyncPool | None = None,
) -> Worker:
    """The production worker's setup (worker.main.build_worker: activities and their ledger
    pool, runner, activation threads, interceptors) with the call workflow swapped. What its
    activities start (the account workflow's balance signal) goes to `activities_task_queue`,
    the real worker's."""
    from core.config import get_settings
    from core.logging import activity_log_interceptor
    from ledger.policy import policy_from_settings
    from worker.main import GRACEFUL_SHUTDOWN, worker_deps, worker_tuning
    from worker.registry import WORKFLOWS, build_activities

    settings = get_settings()
    deps = worker_deps(
        client,
        session_factory,
        policy_from_settings(settings),
        task_queue=activities_task_queue,
        email_sender=email_sender,
        ledger_pool=ledger_pool,
    )
    workflows = [NoHoldsCallWorkflow if w is CallBillingWorkflow else w for w in WORKFLOWS]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=build_activities(deps),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        **worker_tuning(settings),
        interceptors=[activity_log_interceptor()],
    )


async def run_worker() -> None:
    from core.config import get_settings
    from core.temporal_connection import connect_temporal
    from db.async_pool import open_async_pool
    from db.session import get_sessionmaker

    settings = get_settings()
    assert settings.database_url, "DATABASE_URL is required"
    client = await connect_temporal(settings)
    pool = None
    if settings.worker_ledger_pool_size > 0:
        pool = await open_async_pool(
            settings.database_url, settings.worker_ledger_pool_size, name="worker-calls"
        )
    factory = get_sessionmaker(settings.database_url, pre_ping=False)  # as worker.main
    worker = build_no_holds_worker(client, factory, ledger_pool=pool)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            await stop.wait()
    finally:
        if pool is not None:
            await pool.close()


def main() -> None:
    from core.logging import configure_logging

    configure_logging(service="bench-no-holds")
    asyncio.run(run_worker())


if __name__ == "__main__":
    main()
