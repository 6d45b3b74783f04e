"""Records the histories test_replay.py replays. Skipped unless BILLING_RECORD_HISTORIES=1:
it is the tool that (re)writes tests/replay/histories/, not a check.

It records today's shape under `memo_*` names (a lean run started with the `billing_shape`
memo: it checkpoints at usage signals without the `signal-checkpoints` patch marker). Files of
earlier shapes are kept as they are, so they keep replaying: `signal_*` (the same shape started
without the memo, the patch marker and its TemporalChangeVersion upsert recorded), `lean_*`
(the client gives the call's search attributes at start, the deadline timer is not cancelled,
checkpoints only by timer), `ledger_*` (usage checkpointed to the ledger, since the
`ledger-usage` patch, attributes upserted) and the unprefixed ones (recorded before that
patch)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.contracts import call_workflow_id
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger.policy import LedgerPolicy
from orchestrator_client import CALL_START_MEMO, call_search_attributes
from tests.support.calls import Ledger, running_worker, start_call_workflow, uid
from tests.workflows.test_long_calls import eager_continue_as_new_env

__all__ = ["eager_continue_as_new_env"]
HISTORIES = Path(__file__).parent / "histories"
PREFIX = "memo_"
pytestmark = pytest.mark.skipif(
    os.environ.get("BILLING_RECORD_HISTORIES") != "1", reason="records fixtures on request only"
)


async def save(handle: WorkflowHandle[object, object], name: str) -> None:
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{PREFIX}{name}.json").write_text(
        json.dumps({"workflow_id": handle.id, "history": history.to_json_dict()}, indent=1)
    )


async def save_all_runs(client: Client, call_id: str, prefix: str) -> int:
    runs = [
        execution.run_id
        async for execution in client.list_workflows(f"WorkflowId = '{call_workflow_id(call_id)}'")
    ]
    for index, run_id in enumerate(reversed(runs)):
        await save(
            client.get_workflow_handle(call_workflow_id(call_id), run_id=run_id), f"{prefix}{index}"
        )
    return len(runs)


async def test_record(
    workflow_env: WorkflowEnvironment,
    time_skipping_env: WorkflowEnvironment,
    eager_continue_as_new_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
) -> None:
    ledger = Ledger(session_factory, LedgerPolicy())
    async with running_worker(workflow_env.client, session_factory) as billing:
        account_id = ledger.account(paid=10_000, promo=5000)
        call_id = uid("call")
        await billing.authorize(call_id, account_id, "phone")
        await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE[:2]})
        await asyncio.sleep(2.0)  # a checkpoint by its timer (usage gathers 1.5 s)
        await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE[2:3]})
        await asyncio.sleep(1.0)
        # found pending over 0.8 s: a checkpoint in this signal's task, its timer cancelled
        await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE[3:]})
        bad = {"event_id": "x", "component": "llm", "sku": "acme/none", "input_tokens": 1}
        await billing.report_usage(call_id, [bad])
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE[0])
        await billing.authorize(call_id, account_id, "phone")
        await billing.hangup(call_id, "completed")
        await billing.hangup(call_id, "failed")
        assert (await billing.result(call_id)).breakdown.total_paisa == 442
        await save(billing.client.get_workflow_handle(call_workflow_id(call_id)), "completed_442")

        call_id = uid("call")
        await billing.authorize(call_id, account_id, "web")
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE[1])
        await billing.hangup(call_id, "failed", reason="bot crashed")
        assert (await billing.result(call_id)).charged is False
        await save(billing.client.get_workflow_handle(call_workflow_id(call_id)), "failed")

        poor = ledger.account(paid=0, promo=0)
        call_id = uid("call")
        assert not (await billing.authorize(call_id, poor, "phone")).authorized
        await billing.result(call_id)
        await save(billing.client.get_workflow_handle(call_workflow_id(call_id)), "refused")

    async with running_worker(eager_continue_as_new_env.client, session_factory) as billing:
        call_id = uid("call")
        await billing.authorize(call_id, account_id, "phone")
        for minute in range(10):
            events = [
                {**e, "event_id": f"{e['event_id']}-{minute}"} for e in TYPICAL_PHONE_CALL_USAGE
            ]
            await billing.report_usage(call_id, {"events": events})
            await billing.status(call_id)
            await asyncio.sleep(0.4)  # checkpoints now and then
        await billing.hangup(call_id, "completed")
        await billing.result(call_id)
        assert await save_all_runs(billing.client, call_id, "continued_") >= 2

    policy = LedgerPolicy(max_call_duration=timedelta(minutes=5))
    async with running_worker(time_skipping_env.client, session_factory, policy) as billing:
        call_id = uid("call")
        handle = await start_call_workflow(
            time_skipping_env.client,
            billing.task_queue,
            call_id,
            account_id,
            "whatsapp",
            search_attributes=call_search_attributes(account_id, "whatsapp"),
            memo=CALL_START_MEMO,
        )
        await handle.execute_update("authorize", None)
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE[2])
        await handle.result()
        await save(handle, "abandoned")
