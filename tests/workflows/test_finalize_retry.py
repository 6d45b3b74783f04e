"""The fault PLATFORM.md names: the worker dies after the ledger commit but before the activity
reports completion. Here the real finalize commits, then the attempt fails as a dying worker's
would; Temporal retries it, the ledger finds its own key, and the charge is posted once."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calls import CallActivities
from adapters.email.sender import RecordingEmailSender
from domain.contracts import CALL_FINALIZE_ACTIVITY
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import FinalizeCallRequest, FinalizedCall
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, uid
from worker.main import worker_deps
from worker.registry import WORKFLOWS


async def test_finalize_retried_after_its_commit_posts_the_charge_once(
    workflow_env: WorkflowEnvironment, session_factory: sessionmaker[Session], ledger: Ledger
) -> None:
    queue = uid("billing-crash")
    deps = worker_deps(
        workflow_env.client,
        session_factory,
        LedgerPolicy(),
        task_queue=queue,
        email_sender=RecordingEmailSender(),
    )
    real = CallActivities(deps)
    attempts: list[int] = []

    @activity.defn(name=CALL_FINALIZE_ACTIVITY)
    async def finalize_then_crash_once(request: FinalizeCallRequest) -> FinalizedCall:
        result = await real.finalize(request)  # committed
        attempts.append(activity.info().attempt)
        if len(attempts) == 1:
            raise RuntimeError("worker lost after the commit")
        return result

    worker = Worker(
        workflow_env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[real.authorize, finalize_then_crash_once],
    )
    billing = BillingClient(workflow_env.client, task_queue=queue)
    account_id = ledger.account(paid=10_000, promo=0)
    call_id = uid("call")
    async with worker:
        await billing.authorize(call_id, account_id, "phone")
        await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
        await billing.hangup(call_id, "completed")
        result = await billing.result(call_id)
    assert attempts == [1, 2]
    assert result.breakdown.total_paisa == 442 and result.charged is True
    assert [t.amount_paisa for t in ledger.transactions(account_id, "call_charge")] == [-442]
    account = ledger.balance(account_id)
    assert (account.paid_paisa, account.reserved_paisa) == (10_000 - 442, 0)
