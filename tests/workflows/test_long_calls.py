"""Long calls: the maximum duration (time-skipping test server) and continue-as-new (a dev
server that suggests it after 30 history events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest_asyncio
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from dev.temporal import SEARCH_ATTRIBUTES, temporal_cli_path
from domain.contracts.calls import CallBreakdown
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger.policy import LedgerPolicy
from tests.support.calls import Ledger, running_worker, start_call_workflow, uid


async def test_call_without_hangup_is_abandoned_after_the_max_duration_and_charged(
    time_skipping_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
    ledger: Ledger,
) -> None:
    policy = LedgerPolicy(max_call_duration=timedelta(minutes=30))
    async with running_worker(time_skipping_env.client, session_factory, policy) as billing:
        account_id = ledger.account(paid=5000, promo=0)
        call_id = uid("call")
        # The time-skipping test server (1.40) never skips time for a workflow started by
        # Update-with-Start, so start it and send the same `authorize` update separately here.
        handle = await start_call_workflow(
            time_skipping_env.client,
            billing.task_queue,
            call_id,
            account_id,
            "phone",
            result_type=dict,
        )
        decision = await handle.execute_update("authorize", None, result_type=dict)
        assert decision["authorized"] and decision["hold_paisa"] == 1000
        await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
        # The test server skips the 30 minutes. (It answers a result long-poll only for a handle
        # with a run id, so the handle from start, not `billing.result`.)
        result = await handle.result()
    assert result["outcome"] == "abandoned" and result["hangup_reason"] == "max_duration"
    assert result["breakdown"]["total_paisa"] == 442 and result["charged"] is True
    elapsed = datetime.fromisoformat(result["ended_at"]) - datetime.fromisoformat(
        result["started_at"]
    )
    assert elapsed == timedelta(minutes=30)
    account = ledger.balance(account_id)
    assert (account.paid_paisa, account.reserved_paisa) == (5000 - 442, 0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def eager_continue_as_new_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=30",
        ],
    )
    yield env
    await env.shutdown()


async def test_continue_as_new_keeps_totals_dedupe_and_the_decision(
    eager_continue_as_new_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
    ledger: Ledger,
) -> None:
    async with running_worker(eager_continue_as_new_env.client, session_factory) as billing:
        account_id = ledger.account(paid=100_000, promo=0)
        call_id = uid("call")
        decision = await billing.authorize(call_id, account_id, "phone")
        runs: set[int] = set()
        for minute in range(15):
            events = [
                {**e, "event_id": f"{e['event_id']}-{minute}"} for e in TYPICAL_PHONE_CALL_USAGE
            ]
            await billing.report_usage(call_id, {"events": events})
            if minute:  # a retry of the previous minute's report, maybe from an earlier run
                previous = [
                    {**e, "event_id": f"{e['event_id']}-{minute - 1}"}
                    for e in TYPICAL_PHONE_CALL_USAGE
                ]
                await billing.report_usage(call_id, {"events": previous})
            runs.add((await billing.status(call_id)).runs)
        assert max(runs) >= 3, runs
        # The update reaches the latest run, which kept the decision.
        assert await billing.authorize(call_id, account_id, "phone") == decision
        await billing.hangup(call_id, "completed")
        result = await billing.result(call_id)
    assert result.usage_event_count == 60 and result.duplicate_event_count == 56
    # 15 docs calls' worth of usage in one call: each component summed exactly, then rounded.
    assert result.breakdown == CallBreakdown(
        llm_paisa=600,
        stt_paisa=747,  # 900 s × ₹0.0083 = ₹7.47
        tts_paisa=3300,
        sip_paisa=450,
        provider_total_paisa=5097,
        margin_paisa=1529,  # 1529.1
        total_paisa=6626,
    )
    assert [t.amount_paisa for t in ledger.transactions(account_id, "call_charge")] == [-6626]


async def test_old_event_ids_resent_after_continue_as_new_are_not_billed_again(
    eager_continue_as_new_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
    ledger: Ledger,
) -> None:
    """A replayed backlog: the first events of a long call come again after many runs. The
    old workflow carried only the last 5,000 ids to a new run and billed them twice; the
    ledger's unique (call_id, event_id) dedupes the whole call."""
    async with running_worker(eager_continue_as_new_env.client, session_factory) as billing:
        account_id = ledger.account(paid=1_000_000, promo=0)
        call_id = uid("call")
        await billing.authorize(call_id, account_id, "phone")
        sip = {"component": "sip", "sku": "plivo/in-outbound", "seconds": "1"}
        events = [{**sip, "event_id": f"sip-{n}"} for n in range(6000)]
        runs = set()
        for start in range(0, len(events), 250):
            await billing.report_usage(call_id, {"events": events[start : start + 250]})
            runs.add((await billing.status(call_id)).runs)  # an orchestrator's pace
        # One more run after all of them (over 5,000 newer ids since the oldest: the old carry
        # had forgotten those).
        last = max(runs)
        while (await billing.status(call_id)).runs == last:
            more = [{**sip, "event_id": f"sip-{len(events) + n}"} for n in range(50)]
            await billing.report_usage(call_id, {"events": more})
            events += more
        assert last >= 3, runs
        await billing.report_usage(call_id, {"events": events[:300]})
        # The next checkpoint (within about a second) finds them in the ledger: the running
        # status drops them again and counts them as duplicates.
        count = len(events)
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            status = await billing.status(call_id)
            if status.usage_event_count == count or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert (status.usage_event_count, status.duplicate_event_count) == (count, 300)
        assert status.breakdown.sip_paisa == count // 2  # count s × ₹0.005
        await billing.hangup(call_id, "completed")
        result = await billing.result(call_id)
    sip_paisa = count // 2
    # + 30 % margin, half-up to the paisa (the count varies with the pace, so .5 happens).
    total = sip_paisa + (sip_paisa * 3 + 5) // 10
    assert (result.usage_event_count, result.duplicate_event_count) == (count, 300)
    assert result.breakdown.total_paisa == total
    assert [t.amount_paisa for t in ledger.transactions(account_id, "call_charge")] == [-total]
