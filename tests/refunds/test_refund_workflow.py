"""RefundWorkflow on the real dev server, real PostgreSQL, the sandbox gateway and the capture
server."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from temporalio.worker import Replayer

from adapters.payments.gateway import SandboxBehavior
from db.models import LedgerTransaction, Refund
from domain.contracts import REFUND_WORKFLOW, refund_workflow_id
from domain.contracts.refunds import RefundInput, RefundResult
from ledger import refunds
from tests.support.email import Harness, eventually, messages_to, uid
from workflows.refunds import RefundWorkflow


def tx_count(h: Harness, account_id: str) -> int:
    with h.session_factory() as session:
        count = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.account_id == account_id)
        )
        return int(count or 0)


async def run_refund(
    h: Harness, refund_id: str, account_id: str, amount: int | None
) -> RefundResult:
    return await h.client.execute_workflow(
        RefundWorkflow.run,
        RefundInput(refund_id=refund_id, account_id=account_id, amount_paisa=amount),
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
    )


async def test_full_refund_through_the_api_contract(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account(paid_paisa=20_000)  # + ₹50 welcome promo
    refund_id = uid("rf")
    # What the API does: start_refund synchronously (amount omitted = all refundable paid), then
    # start the workflow by type name with one JSON object.
    refund, _ = h.tx(
        lambda s: refunds.start_refund(
            s, refund_id=refund_id, account_id=account_id, amount_paisa=None
        )
    )
    assert refund.amount_paisa == 20_000
    handle = await h.client.start_workflow(
        REFUND_WORKFLOW,
        {"refund_id": refund_id, "account_id": account_id, "amount_paisa": refund.amount_paisa},
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
        result_type=RefundResult,
    )
    result = await handle.result()
    assert result.status == "completed" and result.amount_paisa == 20_000
    assert result.gateway_reference and result.gateway_reference.startswith("sbx_rf_")
    status = await h.client.get_workflow_handle_for(
        RefundWorkflow.run, refund_workflow_id(refund_id)
    ).query(RefundWorkflow.status)
    assert status.status == "completed"
    balance = h.balance(account_id)
    assert (balance.paid_paisa, balance.promo_paisa) == (0, 5000)
    assert h.tx(lambda s: refunds.get_refund(s, refund_id).status) == "completed"
    [mail] = await eventually(lambda: messages_to(h.capture, email))
    assert mail["subject"] == "Your refund of ₹200.00 is on its way"
    assert mail["dedupe_key"] == f"refund-completed:{refund_id}"
    assert h.gateway.attempts[refund_id] == 1


async def test_refund_above_refundable_is_refused_and_changes_nothing(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account(paid_paisa=20_000)
    before, count = h.balance(account_id), tx_count(h, account_id)
    refund_id = uid("rf")
    result = await run_refund(h, refund_id, account_id, 20_001)
    assert result.status == "failed"
    assert result.failure_reason and result.failure_reason.startswith("refund_exceeds_refundable")
    assert h.balance(account_id) == before and tx_count(h, account_id) == count
    with h.session_factory() as session:
        assert session.get(Refund, refund_id) is None
    assert refund_id not in h.gateway.attempts
    assert messages_to(h.capture, email) == []


async def test_gateway_failure_puts_the_money_back(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account(paid_paisa=20_000)
    h.gateway.set_account_behavior(account_id, SandboxBehavior(fail_reason="card closed"))
    refund_id = uid("rf")
    result = await run_refund(h, refund_id, account_id, 15_000)
    assert result.status == "failed" and result.failure_reason == "card closed"
    balance = h.balance(account_id)
    assert (balance.paid_paisa, balance.promo_paisa) == (20_000, 5000)
    refund = h.tx(lambda s: refunds.get_refund(s, refund_id))
    assert refund.status == "failed" and refund.reversal_transaction_id is not None
    [mail] = await eventually(lambda: messages_to(h.capture, email))
    assert "could not be completed" in mail["subject"] and "card closed" in mail["text"]


async def test_slow_and_flaky_gateway_stays_pending_then_completes(harness: Harness) -> None:
    h = harness
    account_id, _ = await h.new_account(paid_paisa=10_000)
    refund_id = uid("rf")
    h.gateway.set_refund_behavior(
        refund_id, SandboxBehavior(delay_seconds=0.5, transient_failures=1)
    )
    handle = await h.client.start_workflow(
        RefundWorkflow.run,
        RefundInput(refund_id=refund_id, account_id=account_id, amount_paisa=4000),
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
    )

    async def debited() -> bool:
        return h.balance(account_id).paid_paisa == 6000

    await eventually(debited)
    assert (await handle.query(RefundWorkflow.status)).status == "pending"
    result = await handle.result()
    assert result.status == "completed" and h.gateway.attempts[refund_id] == 2
    assert h.balance(account_id).paid_paisa == 6000


async def test_concurrent_refunds_cannot_exceed_the_paid_balance(harness: Harness) -> None:
    h = harness
    account_id, _ = await h.new_account(paid_paisa=20_000)
    ids = [uid("rf") for _ in range(3)]
    results = await asyncio.gather(*(run_refund(h, rid, account_id, 15_000) for rid in ids))
    completed = [r for r in results if r.status == "completed"]
    refused = [r for r in results if r.status == "failed"]
    assert len(completed) == 1 and len(refused) == 2
    assert all((r.failure_reason or "").startswith("refund_exceeds_refundable") for r in refused)
    balance = h.balance(account_id)
    assert (balance.paid_paisa, balance.promo_paisa) == (5000, 5000)
    # And the "everything" refunds at once: only one gets the remaining ₹50.
    more = await asyncio.gather(*(run_refund(h, uid("rf"), account_id, None) for _ in range(2)))
    assert sorted(r.status for r in more) == ["completed", "failed"]
    assert [r.amount_paisa for r in more if r.status == "completed"] == [5000]
    assert h.balance(account_id).paid_paisa == 0


async def test_rerun_of_a_finished_refund_changes_nothing_and_replays(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account(paid_paisa=8000)
    refund_id = uid("rf")
    first = await run_refund(h, refund_id, account_id, 3000)
    assert first.status == "completed" and first.email == "sent"
    history = await h.client.get_workflow_handle(refund_workflow_id(refund_id)).fetch_history()
    await Replayer(workflows=[RefundWorkflow]).replay_workflow(history)
    count = tx_count(h, account_id)
    again = await run_refund(h, refund_id, account_id, 3000)  # same id, a new run
    assert again.status == "completed" and again.email == "duplicate"
    assert tx_count(h, account_id) == count and h.balance(account_id).paid_paisa == 5000
    assert h.gateway.attempts[refund_id] == 1
    assert len(messages_to(h.capture, email)) == 1
