"""Money safety of calls over HTTP: late usage as adjustments (contract §3) and an authorize
that fails after the ledger committed (503 `billing_unavailable`, no hold left; contract §3).
On the old code late usage was 409 and never billed, and a failed authorize answered 402 and
left the call active with its hold until expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calls import CallActivities
from adapters.email.sender import RecordingEmailSender
from domain.contracts import CALL_AUTHORIZE_ACTIVITY
from domain.contracts.calls import AuthorizeCallInput, CallAuthorization
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger.policy import LedgerPolicy
from tests.api.conftest import create_account, create_key, unique
from tests.api.test_calls import wait_finalized
from tests.api.test_endpoints import assert_problem, ledger_state
from tests.support.stack import RunningStack, start_stack, temporal_address
from worker.main import worker_deps
from worker.registry import WORKFLOWS


def llm(event_id: str, tokens: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "component": "llm",
        "sku": "openai/gpt-4o-mini",
        "input_tokens": tokens,
        "output_tokens": tokens // 2,
    }


def call_amounts(http: httpx.Client, account_id: str, call_id: str) -> list[int]:
    items = http.get(f"/v1/accounts/{account_id}/transactions?limit=200").json()["items"]
    return [
        t["amount_paisa"]
        for t in items
        if t["reference"] == call_id and t["kind"] in {"call_charge", "call_adjustment"}
    ]


def finished_call(http: httpx.Client, account_id: str, **hangup: Any) -> str:
    call_id = unique("call")
    body = {"call_id": call_id, "account_id": account_id, "channel": "phone"}
    assert http.post("/v1/calls", json=body).status_code == 200
    usage = http.post(f"/v1/calls/{call_id}/usage", json={"events": TYPICAL_PHONE_CALL_USAGE})
    assert usage.status_code == 202
    assert http.post(f"/v1/calls/{call_id}/hangup", json={"outcome": "completed", **hangup})
    wait_finalized(http, call_id)
    return call_id


def test_late_usage_over_http_adjusts_the_call_and_the_breakdown_stays_the_sum(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(call_stack, topup_paisa=50_000)
    with call_stack.client(orchestrator_key) as orch, call_stack.client(account.key) as me:
        call_id = finished_call(orch, account.id)
        assert call_amounts(me, account.id, call_id) == [-442]

        def adds_up() -> int:
            call = me.get(f"/v1/calls/{call_id}").json()
            total: int = call["breakdown"]["total_paisa"]
            assert sum(call_amounts(me, account.id, call_id)) == -total
            return total

        late = orch.post(f"/v1/calls/{call_id}/usage", json=llm("late-1", 40_000))
        assert late.status_code == 202, late.text
        assert late.json()["adjustment_paisa"] > 0
        total = adds_up()
        assert total == 442 + late.json()["adjustment_paisa"]

        repeat = orch.post(f"/v1/calls/{call_id}/usage", json=llm("late-1", 40_000))
        assert repeat.status_code == 202 and repeat.json()["adjustment_paisa"] == 0
        assert len(call_amounts(me, account.id, call_id)) == 2

        several = [llm("late-2", 777), llm("late-3", 123_456)]
        more = orch.post(f"/v1/calls/{call_id}/usage", json={"events": several})
        assert more.status_code == 202 and more.json()["adjustment_paisa"] > 0
        assert adds_up() == total + more.json()["adjustment_paisa"]
        kinds = [
            t["kind"]
            for t in me.get(f"/v1/accounts/{account.id}/transactions").json()["items"]
            if t["reference"] == call_id
        ]
        assert sorted(kinds) == ["call_adjustment", "call_adjustment", "call_charge"]
        balance = me.get(f"/v1/accounts/{account.id}/balance").json()
        assert balance["month_usage_paisa"] == adds_up()

        before = ledger_state(call_stack, account)
        wrong = orch.post(f"/v1/calls/{call_id}/usage", json={**llm("late-4", 1), "sku": "x/y"})
        assert_problem(wrong, 422, "unknown_sku")
        assert ledger_state(call_stack, account) == before


def test_late_usage_after_the_window_is_409_call_ended(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(call_stack, topup_paisa=5000)
    hung_up = datetime.now(UTC) - timedelta(minutes=16)  # the window is 15 minutes
    with call_stack.client(orchestrator_key) as orch:
        call_id = finished_call(orch, account.id, ended_at=hung_up.isoformat())
        before = ledger_state(call_stack, account)
        late = orch.post(f"/v1/calls/{call_id}/usage", json=llm("too-late", 1000))
        assert_problem(late, 409, "call_ended")
    assert ledger_state(call_stack, account) == before


async def test_an_authorize_that_fails_after_its_commit_is_503_and_leaves_no_hold(
    database_url: str,
    workflow_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
) -> None:
    """The worker's authorize commits the hold, then dies (every attempt): the workflow voids
    the call through the retried `call_void` activity and answers `billing_unavailable`."""
    queue = unique("billing-authorize-fails")
    deps = worker_deps(
        workflow_env.client,
        session_factory,
        LedgerPolicy(),
        task_queue=queue,
        email_sender=RecordingEmailSender(),
    )
    real = CallActivities(deps)

    @activity.defn(name=CALL_AUTHORIZE_ACTIVITY)
    async def authorize_then_crash(request: AuthorizeCallInput) -> CallAuthorization:
        await real.authorize(request)  # committed: the call row and its hold exist
        raise RuntimeError("worker lost after the commit")

    others: list[Callable[..., Any]] = [
        real.checkpoint,
        real.finalize,
        real.void,
        real.late_usage,
    ]
    worker = Worker(
        workflow_env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[authorize_then_crash, *others],
    )
    address = temporal_address(workflow_env)
    with start_stack(database_url, address, with_worker=False, task_queue=queue) as stack:
        account = create_account(stack, topup_paisa=10_000)
        orchestrator = create_key(stack, "orchestrator")
        call_id = unique("call")
        body = {"call_id": call_id, "account_id": account.id, "channel": "phone"}
        async with (
            worker,
            httpx.AsyncClient(
                base_url=stack.base_url,
                headers={"Authorization": f"Bearer {orchestrator}"},
                timeout=30,
            ) as http,
        ):
            started = time.monotonic()
            response = await http.post("/v1/calls", json=body)
            assert time.monotonic() - started < 15
            problem = assert_problem(response, 503, "billing_unavailable")
            assert problem["authorized"] is False and problem["hold_paisa"] == 0
            for _ in range(100):  # the void lands right after the answer
                call = (await http.get(f"/v1/calls/{call_id}")).json()
                if call["status"] == "finalized":
                    break
                await asyncio.sleep(0.1)
            assert (call["status"], call["outcome"]) == ("finalized", "refused")
            assert call["refusal_reason"] == "billing_unavailable"
            # The same call_id keeps the same answer: still 503, never 402.
            assert_problem(await http.post("/v1/calls", json=body), 503, "billing_unavailable")
        with stack.client(account.key) as me:
            balance = me.get(f"/v1/accounts/{account.id}/balance").json()
    assert balance["reserved_paisa"] == 0 and balance["available_paisa"] == 15_000
