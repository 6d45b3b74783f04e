"""`python -m worker` as a real process: killed mid-call, a new one finishes the call with the
exact charge posted once; it exports SDK metrics and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, temporal_address, uid, worker_subprocess


async def test_killing_the_worker_mid_call_loses_nothing(
    workflow_env: WorkflowEnvironment, database_url: str, ledger: Ledger
) -> None:
    queue = uid("billing-proc")
    address = temporal_address(workflow_env.client)
    billing = BillingClient(workflow_env.client, task_queue=queue)
    account_id = ledger.account(paid=10_000, promo=0)
    first_call, second_call = uid("call"), uid("call")

    with worker_subprocess(database_url, address, queue) as first:
        decision = await asyncio.wait_for(billing.authorize(first_call, account_id, "phone"), 60)
        assert decision.authorized, first.log_text()
        await billing.authorize(second_call, account_id, "phone")
        await billing.report_usage(first_call, {"events": TYPICAL_PHONE_CALL_USAGE[:2]})
        await billing.report_usage(second_call, {"events": TYPICAL_PHONE_CALL_USAGE})
        assert (await billing.status(first_call)).usage_event_count == 2
        # The second call's hangup races the kill: its finalize may or may not have committed.
        await billing.hangup(second_call, "completed")
        first.kill()

    # No worker now: the orchestrator's signals still land in the workflows' histories.
    await billing.report_usage(first_call, {"events": TYPICAL_PHONE_CALL_USAGE})  # 2 repeats
    await billing.hangup(first_call, "completed")

    with worker_subprocess(database_url, address, queue) as second:
        results = await asyncio.wait_for(
            asyncio.gather(billing.result(first_call), billing.result(second_call)), 90
        )
        for result in results:
            assert result.outcome == "completed", second.log_text()
            assert result.breakdown.total_paisa == 442
            assert result.usage_event_count == 4 and result.charged is True
        charges = ledger.transactions(account_id, "call_charge")
        assert sorted(str(t.reference) for t in charges) == sorted([first_call, second_call])
        assert [t.amount_paisa for t in charges] == [-442, -442]
        account = ledger.balance(account_id)
        assert (account.paid_paisa, account.reserved_paisa) == (10_000 - 884, 0)

        async with httpx.AsyncClient() as http:
            metrics = await http.get(f"http://127.0.0.1:{second.metrics_port}/metrics")
        assert metrics.status_code == 200 and "temporal_" in metrics.text

        assert second.process is not None
        second.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(second.process.wait, 30)
        assert exit_code == 0, second.log_text()
        assert "worker stopped" in second.log_text()
