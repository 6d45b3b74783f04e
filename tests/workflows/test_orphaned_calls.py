"""Nothing is lost when a workflow is (contract §3): a call whose workflow is terminated mid-call
is finalized by `reconcile_orphaned_calls` as `abandoned`, charging exactly the usage its
checkpoints recorded, and its hold is released. On the old code the usage lived only in the
workflow's memory and the call stayed active with its hold until expiry."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.orphaned_calls import OrphanedCallActivities
from adapters.email.sender import RecordingEmailSender
from domain.contracts import call_workflow_id
from domain.contracts.call_usage import OrphanSweep
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger import calls as ledger_calls
from ledger.invariants import check_ledger
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, uid
from worker.main import worker_deps


async def test_a_terminated_call_is_charged_its_checkpointed_usage_by_the_sweep(
    workflow_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
    billing: BillingClient,
    ledger: Ledger,
) -> None:
    account_id = ledger.account(paid=10_000, promo=0)
    lost, alive = uid("lost"), uid("alive")
    await billing.authorize(lost, account_id, "phone")
    await billing.authorize(alive, account_id, "phone")
    await billing.report_usage(lost, {"events": TYPICAL_PHONE_CALL_USAGE})
    # Checkpointed: the hold has followed the running cost (442 + 1,000, plus the other call's).
    await ledger.wait_for(lambda a: a.reserved_paisa == 1442 + 1000, account_id)
    await workflow_env.client.get_workflow_handle(call_workflow_id(lost)).terminate("lost")

    deps = worker_deps(
        workflow_env.client,
        session_factory,
        LedgerPolicy(),
        task_queue=billing.task_queue,
        email_sender=RecordingEmailSender(),
    )
    sweep = OrphanedCallActivities(deps).reconcile_orphaned_calls
    mine = OrphanSweep(min_age_seconds=0, call_ids=[lost, alive])
    report = await ActivityEnvironment().run(sweep, mine)
    assert report.findings == {
        "active_call_checked": 2,  # one of them still running: left alone
        "orphaned_call_finalized": 1,
        "orphaned_call_paisa_charged": 442,
    }

    call = ledger.tx(lambda s: ledger_calls.get_call(s, lost))
    assert (call.status, call.outcome, call.hangup_reason) == (
        "finalized",
        "abandoned",
        "workflow_lost",
    )
    assert call.total_paisa == 442 and call.usage_event_count == 4
    assert [t.amount_paisa for t in ledger.transactions(account_id, "call_charge")] == [-442]
    account = ledger.balance(account_id)
    assert (account.paid_paisa, account.reserved_paisa) == (10_000 - 442, 1000)  # alive's hold

    again = await ActivityEnvironment().run(sweep, mine)  # idempotent: nothing more to do
    assert again.findings == {"active_call_checked": 1}
    await billing.hangup(alive, "busy")
    assert not (await billing.result(alive)).charged
    assert ledger.tx(lambda s: check_ledger(s, [account_id])) == []
