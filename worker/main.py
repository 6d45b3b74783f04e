"""The one billing worker process: every workflow and activity in worker.registry, polling
`settings.task_queue` (env TASK_QUEUE, by default `domain.contracts.TASK_QUEUE`).

`python -m worker` reads its settings from the environment (contract §5): TEMPORAL_ADDRESS
(default 127.0.0.1:7233), TEMPORAL_NAMESPACE, TLS and API key (core.temporal_connection),
DATABASE_URL (required; migrated on start), WORKER_METRICS_PORT / WORKER_METRICS_HOST (the
Temporal SDK's and the billing metrics in Prometheus naming, core.metrics; 0 turns them off),
OTEL_* (tracing, core.tracing). In production (BILLING_ENV unset or `production`) it refuses to
start without SENDGRID_API_KEY (core.production). SIGTERM/SIGINT stop it gracefully: polling
stops, running tasks get GRACEFUL_SHUTDOWN to finish. At start it creates the reconciler's
Temporal Schedule when missing (worker.schedules).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import logging
import os
import signal
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.deps import WorkerDeps
from adapters.email.sender import EmailSender, email_sender_from_settings
from adapters.payments.gateway import (
    PaymentGateway,
    SandboxPaymentGateway,
    payment_gateway_from_env,
)
from adapters.payments.razorpay import RazorpayGateway
from adapters.payments.razorpay_checkout import configured_razorpay
from adapters.payments.razorpay_payouts import RazorpayPayouts
from adapters.payments.refund_rails import RazorpayRefundRails, RefundRails, SandboxRefundRails
from core.config import Settings, get_settings
from core.logging import activity_log_interceptor, configure_logging
from core.metrics import worker_prometheus_config
from core.production import InsecureSettings, refuse_insecure_start
from core.temporal_connection import connect_options, connect_temporal, describe
from core.tracing import instrument_engine, setup_tracing, temporal_interceptors
from db.async_pool import AsyncPool
from domain.contracts import TASK_QUEUE
from ledger.policy import LedgerPolicy, policy_from_settings
from worker.registry import WORKFLOWS, build_activities
from worker.schedules import ensure_reconciler_schedule

log = logging.getLogger(__name__)
GRACEFUL_SHUTDOWN = timedelta(seconds=10)


def worker_deps(
    client: Client,
    session_factory: sessionmaker[Session],
    policy: LedgerPolicy,
    *,
    task_queue: str = TASK_QUEUE,
    email_sender: EmailSender | None = None,
    payment_gateway: PaymentGateway | None = None,
    refund_rails: RefundRails | None = None,
    ledger_pool: AsyncPool | None = None,
) -> WorkerDeps:
    """The activities' collaborators; the email sender, the payment gateway and the refund
    rails default to the ones the settings and environment name. `ledger_pool` (open, owned by
    the caller): calls' ledger transactions on the event loop."""
    settings = get_settings()
    razorpay = configured_razorpay(settings)
    gateway = payment_gateway or payment_gateway_from_env()
    return WorkerDeps(
        session_factory=session_factory,
        policy=policy,
        client=client,
        task_queue=task_queue,
        email_sender=email_sender or email_sender_from_settings(),
        payment_gateway=gateway,
        email_from=settings.email_from,
        dashboard_url=settings.dashboard_url,
        razorpay=razorpay,
        refund_rails=refund_rails or refund_rails_for(settings, razorpay, gateway),
        payout_fund_account_id=settings.refund_payout_fund_account_id,
        checkout_expiry_seconds=settings.checkout_expiry_seconds,
        ledger_pool=ledger_pool,
    )


def refund_rails_for(
    settings: Settings, razorpay: RazorpayGateway | None, sandbox: PaymentGateway
) -> RefundRails:
    """Razorpay refunds and RazorpayX payouts with RAZORPAY keys (the dev stack's stand-in
    sets them); without keys the in-process sandbox (tests of a worker without Razorpay)."""
    if razorpay is not None:
        payouts = None
        if settings.razorpayx_account_number:
            payouts = RazorpayPayouts.from_settings(
                settings,
                account_number=settings.razorpayx_account_number,
                timeout_seconds=settings.razorpay_timeout_seconds,
            )
        return RazorpayRefundRails(razorpay, payouts)
    log.warning("no RAZORPAY_KEY_ID: refunds go through the in-process sandbox, no money moves")
    assert isinstance(sandbox, SandboxPaymentGateway)
    return SandboxRefundRails(sandbox)


def build_worker(
    client: Client,
    session_factory: sessionmaker[Session],
    policy: LedgerPolicy,
    *,
    task_queue: str = TASK_QUEUE,
    email_sender: EmailSender | None = None,
    payment_gateway: PaymentGateway | None = None,
    refund_rails: RefundRails | None = None,
    ledger_pool: AsyncPool | None = None,
) -> Worker:
    """A worker with everything registered; tests use it in-process with their own queue."""
    deps = worker_deps(
        client,
        session_factory,
        policy,
        task_queue=task_queue,
        email_sender=email_sender,
        payment_gateway=payment_gateway,
        refund_rails=refund_rails,
        ledger_pool=ledger_pool,
    )
    settings = get_settings()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(deps),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        **worker_tuning(settings),
        # JSON log lines with call_id/account_id per activity + billing metrics (core.logging).
        interceptors=[activity_log_interceptor()],
    )


def worker_tuning(settings: Settings) -> dict[str, Any]:
    """How a worker runs workflow tasks, from the settings: the runner, the activation threads
    and the task polls. The bench's baseline and no-holds workers take the same, so they differ
    from the billing worker only in what their workflows do."""
    return {
        "workflow_runner": (
            SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()
        ),
        "workflow_task_executor": workflow_task_executor(settings.worker_workflow_threads),
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(
            settings.worker_workflow_task_polls
        ),
        "nonsticky_to_sticky_poll_ratio": settings.worker_nonsticky_poll_ratio,
    }


@functools.cache
def workflow_task_executor(threads: int) -> concurrent.futures.ThreadPoolExecutor:
    """The threads that run workflow activations, one pool per process: the SDK does not shut
    down an executor it is given, so a pool per Worker (tests start hundreds in one process)
    would leave its idle threads behind."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=threads, thread_name_prefix="workflow-task"
    )


def _runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting the SDK's metrics, or None (the default runtime) when turned off."""
    if not settings.worker_metrics_port:
        return None
    host = os.environ.get("WORKER_METRICS_HOST", "127.0.0.1")
    address = f"{host}:{settings.worker_metrics_port}"
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=worker_prometheus_config(address)))
    except Exception:
        # A second worker on one host (port taken) still bills calls; it just has no metrics.
        log.warning("worker metrics not exported: cannot bind %s", address, exc_info=True)
        return None


async def run(settings: Settings, stop: asyncio.Event) -> None:
    from db.async_pool import open_async_pool
    from db.migrate import upgrade
    from db.session import get_sessionmaker

    if not settings.database_url:
        raise SystemExit("DATABASE_URL is required for the worker")
    try:
        refuse_insecure_start(settings, "worker")
    except InsecureSettings as exc:
        raise SystemExit(str(exc)) from None
    if settings.migrate_on_start:
        await asyncio.to_thread(upgrade, settings.database_url)
    address = describe(connect_options(settings))
    runtime = _runtime(settings)
    if runtime is not None:
        # core.metrics records outside an activity (e.g. the reconciler) on the default meter.
        Runtime.set_default(runtime, error_if_already_set=False)
    client = await connect_temporal(
        settings,
        runtime=runtime or Runtime.default(),
        # Tracing: the worker inherits its client's interceptors (core.tracing).
        interceptors=temporal_interceptors(),
    )
    # No pre-ping round trip per activity: run_in_transaction retries a lost connection.
    factory = get_sessionmaker(settings.database_url, pre_ping=False)
    instrument_engine(factory.kw["bind"])  # the factory's own engine (get_engine caches by args)
    ledger_pool = None
    if settings.worker_ledger_pool_size > 0:
        ledger_pool = await open_async_pool(
            settings.database_url, settings.worker_ledger_pool_size, name="worker-calls"
        )
    try:
        worker = build_worker(
            client,
            factory,
            policy_from_settings(settings),
            task_queue=settings.task_queue,
            ledger_pool=ledger_pool,
        )
        await _serve(settings, client, worker, stop, address)
    finally:
        if ledger_pool is not None:
            await ledger_pool.close()


async def _serve(
    settings: Settings, client: Client, worker: Worker, stop: asyncio.Event, address: str
) -> None:
    """Poll until `stop` is set (then finish running tasks) or the worker fails."""
    if settings.reconciler_schedule:
        try:
            await ensure_reconciler_schedule(client, settings.task_queue)
        except Exception:  # billing runs without it; the next worker start tries again
            log.exception("the reconciler schedule could not be created or checked")
    log.info("worker polling %s on %s", settings.task_queue, address)
    # What start-up made lives as long as the process: out of the collector's sight (as the API).
    gc.collect()
    gc.freeze()
    worker_task = asyncio.create_task(worker.run())
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({worker_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    if not worker_task.done():
        log.info("stopping: finishing running tasks (up to %s)", GRACEFUL_SHUTDOWN)
        await worker.shutdown()
    stop_task.cancel()
    await worker_task  # re-raises a fatal worker error
    log.info("worker stopped")


def main() -> None:
    configure_logging(service="worker")
    setup_tracing("worker")
    settings = get_settings()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    asyncio.run(_main())
