"""The reconciler re-drives refunds left `pending`: one whose workflow was terminated, one that
never had a workflow (the old API debited, then crashed before starting it). Each completes
with one debit and one payout; a refund whose workflow is still at it is left alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from adapters.payments.gateway import SandboxBehavior
from db.models import LedgerTransaction
from domain.contracts import refund_workflow_id
from domain.contracts.refunds import RefundInput, RefundResult
from ledger import refunds
from tests.support.email import Harness, eventually, uid
from workflows.refunds import RefundWorkflow

NOW = timedelta(0)


def refund_debits(h: Harness, refund_id: str) -> int:
    with h.session_factory() as session:
        count = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == "refund", LedgerTransaction.reference == refund_id)
        )
        return int(count or 0)


def status_of(h: Harness, refund_id: str) -> str:
    return h.tx(lambda s: refunds.get_refund(s, refund_id).status)


async def test_a_refund_without_a_workflow_is_started_and_completes(harness: Harness) -> None:
    h = harness
    account_id, _ = await h.new_account(paid_paisa=10_000)
    refund_id = uid("rf")
    h.tx(
        lambda s: refunds.start_refund(
            s, refund_id=refund_id, account_id=account_id, amount_paisa=4000
        )
    )
    # Not pending long enough yet: left alone.
    await h.reconciler().redrive_pending_refunds()
    assert status_of(h, refund_id) == "pending" and refund_id not in h.gateway.attempts

    report = await h.reconciler(refund_pending_after=NOW).redrive_pending_refunds()
    assert report.findings["refund_redriven"] >= 1
    result = await h.client.get_workflow_handle(
        refund_workflow_id(refund_id), result_type=RefundResult
    ).result()
    assert result.status == "completed" and result.amount_paisa == 4000
    assert status_of(h, refund_id) == "completed"
    assert refund_debits(h, refund_id) == 1 and h.gateway.attempts[refund_id] == 1
    assert h.balance(account_id).paid_paisa == 6000


async def test_a_terminated_refund_workflow_is_run_again(harness: Harness) -> None:
    h = harness
    account_id, _ = await h.new_account(paid_paisa=10_000)
    refund_id = uid("rf")
    h.gateway.set_refund_behavior(refund_id, SandboxBehavior(transient_failures=1000))
    handle = await h.client.start_workflow(
        RefundWorkflow.run,
        RefundInput(refund_id, account_id, 2500),
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
    )
    await eventually(lambda: h.balance(account_id).paid_paisa == 7500)  # debited, pending

    # Still running (the gateway is down): not a finding, nothing started.
    await h.reconciler(refund_pending_after=NOW).redrive_pending_refunds()
    assert (await handle.describe()).run_id == handle.result_run_id

    await handle.terminate("operator error")
    h.gateway.set_refund_behavior(refund_id, SandboxBehavior())
    report = await h.reconciler(refund_pending_after=NOW).redrive_pending_refunds()
    assert report.findings["refund_redriven"] >= 1
    result = await h.client.get_workflow_handle(
        refund_workflow_id(refund_id), result_type=RefundResult
    ).result()
    assert result.status == "completed" and status_of(h, refund_id) == "completed"
    assert refund_debits(h, refund_id) == 1 and h.balance(account_id).paid_paisa == 7500
