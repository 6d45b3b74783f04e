"""What the worker's activities need, built once per worker by `worker.main.worker_deps`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from adapters.email.sender import EmailSender
from adapters.payments.gateway import PaymentGateway
from adapters.payments.razorpay import RazorpayGateway
from adapters.payments.refund_rails import RefundRails
from db.async_pool import AsyncPool
from ledger.policy import LedgerPolicy


@dataclass(frozen=True)
class WorkerDeps:
    session_factory: sessionmaker[Session]
    policy: LedgerPolicy
    client: Client
    task_queue: str  # the worker's own queue: balance notifications start AccountWorkflow there
    email_sender: EmailSender
    payment_gateway: PaymentGateway
    email_from: str
    dashboard_url: str
    razorpay: RazorpayGateway | None = None  # None: no RAZORPAY_KEY_ID (charges fail clearly)
    checkout_expiry_seconds: int = 30 * 60
    refund_rails: RefundRails | None = None  # None: refund parts through `payment_gateway`
    payout_fund_account_id: str | None = None  # for accounts without their own (dev stand-in)
    # Calls' ledger transactions on the event loop (None: through the Session, on a thread).
    ledger_pool: AsyncPool | None = None


async def workflow_running(client: Client, workflow_id: str) -> bool:
    """Whether the workflow's latest run is still running; False when it is closed or Temporal
    has no such workflow (the reconciler's test before it takes over a call or a refund)."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING
