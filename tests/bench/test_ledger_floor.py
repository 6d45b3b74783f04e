"""The benchmark's ledger floor (bench.baseline's `baseline+ledger` variant) against the real
Temporal server and PostgreSQL: the baseline workflow whose local activities really commit a
call's hold, its usage checkpoints and its charge. If they wrote nothing, the floor would read as
the baseline and say billing had room it has not."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench.baseline import build_ledger_floor_worker
from bench.ledger_cases import call_price
from db.async_pool import open_async_pool
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger.invariants import check_ledger
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.bench.test_no_holds import usage_rows
from tests.support.calls import Ledger, uid


async def test_the_ledger_floor_holds_checkpoints_a_gathered_report_and_charges_once(
    workflow_env: WorkflowEnvironment, session_factory: sessionmaker[Session]
) -> None:
    ledger = Ledger(session_factory, LedgerPolicy())
    account_id = ledger.account(paid=100_000, promo=0)
    url = session_factory.kw["bind"].url.render_as_string(hide_password=False)
    pool = await open_async_pool(url, 2, name="test-ledger-floor")
    queue = uid("bench-ledger")
    price, _ = call_price()
    try:
        async with build_ledger_floor_worker(workflow_env.client, pool, task_queue=queue):
            billing = BillingClient(workflow_env.client, task_queue=queue)
            call_id = uid("call")
            decision = await billing.authorize(call_id, account_id, "phone")
            assert decision.authorized and decision.hold_paisa == 1000
            assert ledger.balance(account_id).reserved_paisa == 1000  # the hold is committed
            first, second = TYPICAL_PHONE_CALL_USAGE[:2], TYPICAL_PHONE_CALL_USAGE[2:]
            await billing.report_usage(call_id, {"events": first})
            await billing.report_usage(call_id, {"events": first})  # repeated: counted once
            assert ledger.balance(account_id).reserved_paisa == 1000  # not gathered yet
            # Past SIGNAL_GATHER (0.8 s) from the first report's task, with room for a
            # task that starts late on a loaded machine.
            await asyncio.sleep(1.2)
            await billing.report_usage(call_id, {"events": second})
            # That report's task checkpoints the pending events: recorded, the hold raised.
            raised = 1000 + len(TYPICAL_PHONE_CALL_USAGE)
            await ledger.wait_for(lambda a: a.reserved_paisa == raised, account_id, timeout=5)
            assert usage_rows(session_factory, call_id) == len(TYPICAL_PHONE_CALL_USAGE)
            await billing.hangup(call_id, "completed")
            await billing.result(call_id)
    finally:
        await pool.close()
    account = ledger.balance(account_id)
    assert account.reserved_paisa == 0
    assert account.paid_paisa == 100_000 - price.total_paisa
    charges = ledger.transactions(account_id, "call_charge")
    assert [t.amount_paisa for t in charges] == [-price.total_paisa]
    with session_factory() as session:
        assert check_ledger(session, [account_id]) == []
