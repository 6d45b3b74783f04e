"""osmAPI over HTTP: the batch form (POST /v1/api-usage/batch) with per-request idempotency and
per-request errors, and the account workflow told only of a drop below the alert threshold."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.contracts import account_workflow_id
from tests.api.conftest import Account, create_account, unique
from tests.api.test_endpoints import assert_problem, ledger_state
from tests.support.stack import RunningStack

SMALL = {"sku": "openai/gpt-4o-mini", "input_tokens": 24_000, "output_tokens": 2_000}  # 52
BIG = {"sku": "openai/gpt-4o", "input_tokens": 100_000, "output_tokens": 20_000}  # 4870


def req(account: Account, usage: dict[str, Any] = SMALL, **fields: Any) -> dict[str, Any]:
    return {"request_id": unique("req"), "account_id": account.id, **usage, **fields}


def balance(stack: RunningStack, account: Account) -> dict[str, Any]:
    with stack.client(stack.admin_key) as http:
        body: dict[str, Any] = http.get(f"/v1/accounts/{account.id}/balance").json()
    return body


def check_ledger(stack: RunningStack, *accounts: Account) -> None:
    from db.session import get_sessionmaker
    from ledger.invariants import check_ledger as check

    with get_sessionmaker(stack.database_url)() as session:
        found = check(session, [a.id for a in accounts])
    assert not found, "\n".join(map(str, found))


def test_batch_charges_each_request_like_the_single_form(
    stack: RunningStack, orchestrator_key: str
) -> None:
    a, b = create_account(stack, topup_paisa=100_000), create_account(stack, topup_paisa=100_000)
    requests = [req(a), req(b, BIG), req(a, BIG), req(a, input_tokens=0, output_tokens=0)]
    with stack.client(orchestrator_key) as http:
        before = {x.id: balance(stack, x) for x in (a, b)}
        response = http.post("/v1/api-usage/batch", json={"requests": requests})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["charged"], body["replayed"], body["failed"]) == (4, 0, 0)
        results = body["results"]
        assert [r["request_id"] for r in results] == [r["request_id"] for r in requests]
        assert [r["total_paisa"] for r in results] == [52, 4870, 4870, 0]
        assert results[3]["transaction_id"] is None  # nothing to post for a free request
        # The single form prices the same body the same way.
        single = http.post("/v1/api-usage", json=req(a, BIG)).json()
        assert single["total_paisa"] == 4870
        after = {x.id: balance(stack, x) for x in (a, b)}
    balances = {x["account_id"]: x for x in body["balances"]}
    assert balances[a.id]["available_paisa"] == before[a.id]["available_paisa"] - 52 - 4870
    assert balances[b.id]["available_paisa"] == before[b.id]["available_paisa"] - 4870
    assert balances[a.id]["month_usage_paisa"] == before[a.id]["month_usage_paisa"] + 4922
    assert after[a.id]["available_paisa"] == balances[a.id]["available_paisa"] - 4870
    assert after[a.id]["month_usage_paisa"] == balances[a.id]["month_usage_paisa"] + 4870
    check_ledger(stack, a, b)


def test_batch_mixes_new_replayed_conflicting_and_bad_requests(
    stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(stack, topup_paisa=50_000)
    first, second = req(account), req(account, BIG)
    with stack.client(orchestrator_key) as http:
        charged = http.post("/v1/api-usage/batch", json={"requests": [first, second]}).json()
        state = ledger_state(stack, account)
        # The same batch again: every request replayed, nothing posted.
        again = http.post("/v1/api-usage/batch", json={"requests": [first, second]}).json()
        assert (again["charged"], again["replayed"], again["failed"]) == (0, 2, 0)
        assert [r["transaction_id"] for r in again["results"]] == [
            r["transaction_id"] for r in charged["results"]
        ]
        assert ledger_state(stack, account) == state
        fresh, twin = req(account), req(account)
        mixed = [
            first,  # replayed
            {**second, "output_tokens": 1},  # same request_id, another body
            fresh,  # new
            {**fresh},  # the same request twice in one batch: charged once
            {**twin},
            {**twin, "input_tokens": 1},  # a twin with another body
            req(account, sku="nobody/no-such-model"),
            req(account, account_id="acc_missing"),
        ]
        body = http.post("/v1/api-usage/batch", json={"requests": mixed}).json()
    statuses = [(r["status"], (r["error"] or {}).get("code")) for r in body["results"]]
    assert statuses == [
        ("replayed", None),
        ("failed", "conflict"),
        ("charged", None),
        ("replayed", None),
        ("charged", None),
        ("failed", "conflict"),
        ("failed", "unknown_sku"),
        ("failed", "not_found"),
    ]
    assert body["results"][1]["error"]["status"] == 409
    assert body["results"][3]["transaction_id"] == body["results"][2]["transaction_id"]
    assert (body["charged"], body["replayed"], body["failed"]) == (2, 2, 4)
    after, transactions = ledger_state(stack, account)
    assert len(transactions) == len(state[1]) + 2  # the failed ones wrote nothing
    assert after["available_paisa"] == state[0]["available_paisa"] - 2 * 52
    check_ledger(stack, account)


def test_a_thousand_requests_in_one_call_and_the_limits(
    stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(stack, topup_paisa=1_000_000)
    requests = [req(account) for _ in range(1000)]
    with stack.client(orchestrator_key) as http:
        before = balance(stack, account)
        body = http.post("/v1/api-usage/batch", json={"requests": requests}, timeout=60).json()
        assert body["charged"] == 1000 and body["failed"] == 0
        assert balance(stack, account)["available_paisa"] == before["available_paisa"] - 52_000
        state = ledger_state(stack, account)
        # Over the limit, empty, or one malformed request: the whole call is a 422 and
        # nothing is charged (the gateway has a bug to fix, not a request to retry).
        for bad in (
            [req(account) for _ in range(1001)],
            [],
            [req(account), req(account, input_tokens=-1)],
            [req(account), {**req(account), "tokens": 5}],
            [req(account), req(account, request_id="")],
        ):
            response = http.post("/v1/api-usage/batch", json={"requests": bad})
            assert_problem(response, 422, "validation_error")
        assert_problem(http.post("/v1/api-usage/batch", json=requests[:2]), 422, "validation_error")
    assert ledger_state(stack, account) == state
    check_ledger(stack, account)


async def _account_signals(env: WorkflowEnvironment, account: Account) -> int:
    """Signals the account's AccountWorkflow got (0: Temporal never heard of the account)."""
    handle = env.client.get_workflow_handle(account_workflow_id(account.id))
    try:
        history = await handle.fetch_history()
    except RPCError:
        return 0
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )


def _outbox(stack: RunningStack, account: Account) -> list[str]:
    from sqlalchemy import text

    from db.session import get_sessionmaker

    with get_sessionmaker(stack.database_url)() as session:
        rows = session.execute(
            text("SELECT dedupe_key FROM alert_outbox WHERE account_id = :a"), {"a": account.id}
        )
        return [row[0] for row in rows]


async def test_only_a_drop_below_the_alert_threshold_reaches_temporal(
    call_stack: RunningStack, orchestrator_key: str, workflow_env: WorkflowEnvironment
) -> None:
    account = create_account(call_stack)  # ₹50 welcome promo, alert threshold ₹10
    with call_stack.client(orchestrator_key) as http:
        for _ in range(3):
            assert http.post("/v1/api-usage", json=req(account)).status_code == 200
        assert await _account_signals(workflow_env, account) == 0  # 4844 left: above
        crossing = http.post("/v1/api-usage/batch", json={"requests": [req(account, BIG)]})
        after = crossing.json()["balances"][0]
        assert after["available_paisa"] == 4844 - 4870
        # The crossing is in the outbox with the charge, and handed to the account workflow.
        assert len(_outbox(call_stack, account)) == 1
        assert await _account_signals(workflow_env, account) == 1
        for _ in range(2):  # already below: the workflow has alerted, nothing new to tell
            assert http.post("/v1/api-usage", json=req(account)).status_code == 200
        assert await _account_signals(workflow_env, account) == 1
    assert len(_outbox(call_stack, account)) == 1
    check_ledger(call_stack, account)
