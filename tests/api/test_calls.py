"""Calls over HTTP, through CallBillingWorkflow (Temporal) and the billing worker.

The docs' example call (60 s English phone call) driven entirely over HTTP costs 442 paisa and
shows up in the customer's balance, transactions and calls list."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.contracts import TASK_QUEUE
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from orchestrator_client import BillingClient
from tests.api.conftest import create_account, unique
from tests.api.test_endpoints import assert_problem, ledger_state, metric_value
from tests.support.stack import RunningStack


def wait_finalized(http: httpx.Client, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/v1/calls/{call_id}")
        assert response.status_code == 200, response.text
        call: dict[str, Any] = response.json()
        if call["status"] == "finalized":
            return call
        assert time.monotonic() < deadline, f"call {call_id} not finalized: {call}"
        time.sleep(0.05)


def authorize(http: httpx.Client, account_id: str, channel: str = "phone") -> str:
    call_id = unique("call")
    response = http.post(
        "/v1/calls", json={"call_id": call_id, "account_id": account_id, "channel": channel}
    )
    assert response.status_code == 200, response.text
    return call_id


def test_docs_example_call_over_http_costs_442(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    stack = call_stack
    account = create_account(stack, topup_paisa=50000)  # ₹500 paid + ₹50 welcome promo
    call_id = unique("docs-call")
    with stack.client(orchestrator_key) as orch, stack.client(account.key) as customer:
        metrics_before = httpx.get(stack.api.metrics_url).text
        started = time.monotonic()
        response = orch.post(
            "/v1/calls", json={"call_id": call_id, "account_id": account.id, "channel": "phone"}
        )
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["authorized"] is True and decision["reason"] is None
        assert decision["hold_paisa"] == 1000 and decision["available_paisa"] == 55000
        assert customer.get(f"/v1/accounts/{account.id}/balance").json()["reserved_paisa"] == 1000
        usage = orch.post(f"/v1/calls/{call_id}/usage", json={"events": TYPICAL_PHONE_CALL_USAGE})
        assert usage.status_code == 202, usage.text
        assert usage.json()["accepted"] == 4
        # A repeated event_id is counted once.
        again = orch.post(f"/v1/calls/{call_id}/usage", json=TYPICAL_PHONE_CALL_USAGE[0])
        assert again.status_code == 202
        live = customer.get(f"/v1/calls/{call_id}").json()
        assert live["status"] == "active"
        assert live["breakdown"]["total_paisa"] == 442
        hangup = orch.post(f"/v1/calls/{call_id}/hangup", json={"outcome": "completed"})
        assert hangup.status_code == 202, hangup.text
        call = wait_finalized(customer, call_id)
        elapsed = time.monotonic() - started
        balance = customer.get(f"/v1/accounts/{account.id}/balance").json()
        transactions = customer.get(f"/v1/accounts/{account.id}/transactions").json()["items"]
        calls = customer.get(f"/v1/accounts/{account.id}/calls").json()["items"]
        metrics_after = httpx.get(stack.api.metrics_url).text
    assert call["outcome"] == "completed"
    assert call["breakdown"] == {
        "llm_paisa": 40,
        "stt_paisa": 50,
        "tts_paisa": 220,
        "sip_paisa": 30,
        "provider_total_paisa": 340,
        "margin_paisa": 102,
        "total_paisa": 442,
    }
    assert {(u["component"], u["unit"], u["quantity"]) for u in call["usage"]} == {
        ("llm", "input_tokens", "24000"),
        ("llm", "output_tokens", "2000"),
        ("stt", "audio_seconds", "60"),
        ("tts", "characters", "550"),
        ("sip", "seconds", "60"),
    }
    assert call["started_at"] and call["ended_at"] and call["finalized_at"]
    # Promo is spent first; the hold is released.
    assert balance["promo_paisa"] == 5000 - 442
    assert balance["paid_paisa"] == 50000
    assert balance["available_paisa"] == 55000 - 442
    assert balance["reserved_paisa"] == 0
    assert balance["month_usage_paisa"] == 442
    charge = transactions[0]
    assert charge["kind"] == "call_charge" and charge["amount_paisa"] == -442
    assert charge["reference"] == call_id and charge["balance_after"] == 55000 - 442
    assert sum(t["amount_paisa"] for t in transactions) == balance["available_paisa"]
    assert calls[0]["call_id"] == call_id and calls[0]["breakdown"]["total_paisa"] == 442
    assert elapsed < 10
    # The API's metrics count its requests; the call's own metrics (decision, charge) are the
    # worker's (tests/core/test_metrics.py).
    for name, labels, delta in [
        ("billing_http_requests_total", 'method="POST",route="/v1/calls",status="200"', 1),
        (
            "billing_http_requests_total",
            'method="POST",route="/v1/calls/{call_id}/hangup",status="202"',
            1,
        ),
    ]:
        grew = metric_value(metrics_after, name, labels) - metric_value(
            metrics_before, name, labels
        )
        assert grew >= delta, (name, labels, grew)
    assert 'kind="call"' not in metrics_after  # never counted twice


def test_refused_call_is_402_with_the_authorize_fields_and_never_charged(
    call_stack: RunningStack, orchestrator_key: str, admin: httpx.Client
) -> None:
    account = create_account(call_stack)
    # Drain the ₹50 promo below the ₹10 minimum with an osmAPI charge.
    drain = {
        "request_id": unique("req"),
        "account_id": account.id,
        "sku": "openai/gpt-4o",
        "input_tokens": 0,
        "output_tokens": 50_000,
    }
    with call_stack.client(orchestrator_key) as http:
        assert http.post("/v1/api-usage", json=drain).status_code == 200
        before = ledger_state(call_stack, account)
        call_id = unique("refused")
        body = {"call_id": call_id, "account_id": account.id, "channel": "web"}
        refused = http.post("/v1/calls", json=body)
        problem = assert_problem(refused, 402, "insufficient_balance")
        assert problem["authorized"] is False
        assert problem["reason"] == "insufficient_balance"
        assert problem["hold_paisa"] == 0
        assert problem["available_paisa"] == before[0]["available_paisa"]
        assert "rate_card_version" in problem
        # The same call_id gets the same decision.
        assert_problem(http.post("/v1/calls", json=body), 402, "insufficient_balance")
        call = wait_finalized(http, call_id)
        assert call["outcome"] == "refused" and call["breakdown"]["total_paisa"] == 0
        hangup = http.post(f"/v1/calls/{call_id}/hangup", json={"outcome": "completed"})
        assert hangup.status_code == 202
        late = http.post(f"/v1/calls/{call_id}/usage", json=TYPICAL_PHONE_CALL_USAGE[0])
        assert_problem(late, 409, "call_ended")
    balance, transactions = ledger_state(call_stack, account)
    assert (balance, transactions) == before


def test_bad_calls_and_usage_are_refused_and_change_nothing(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(call_stack, topup_paisa=10000)
    with call_stack.client(orchestrator_key) as http:
        before = ledger_state(call_stack, account)
        for body, status, code in [
            ({"call_id": unique("c"), "account_id": account.id, "channel": "fax"}, 422, None),
            ({"call_id": "bad id/1", "account_id": account.id, "channel": "web"}, 422, None),
            ({"call_id": unique("c"), "account_id": "acc_missing", "channel": "web"}, 404, None),
            ({"call_id": unique("c"), "channel": "web"}, 422, None),
        ]:
            response = http.post("/v1/calls", json=body)
            assert_problem(
                response, status, code or {404: "not_found"}.get(status, "validation_error")
            )
        assert ledger_state(call_stack, account) == before
        web_call = authorize(http, account.id, "web")
        for event, code in [
            ({**TYPICAL_PHONE_CALL_USAGE[3]}, "invalid_component"),  # sip on a web call
            ({**TYPICAL_PHONE_CALL_USAGE[1], "sku": "acme/ears-9000"}, "unknown_sku"),
            ({**TYPICAL_PHONE_CALL_USAGE[1], "sku": "elevenlabs/flash-v2"}, "invalid_component"),
            ({"event_id": "e1", "component": "stt", "sku": "deepgram/nova-3"}, "validation_error"),
        ]:
            response = http.post(f"/v1/calls/{web_call}/usage", json=event)
            assert_problem(response, 422, code)
        for event in [
            {**TYPICAL_PHONE_CALL_USAGE[1], "audio_seconds": -1},
            {**TYPICAL_PHONE_CALL_USAGE[1], "audio_seconds": 1.5},
            {**TYPICAL_PHONE_CALL_USAGE[1], "audio_seconds": 10**12},
            {**TYPICAL_PHONE_CALL_USAGE[1], "component": "gpu"},
            {**TYPICAL_PHONE_CALL_USAGE[1], "surprise": 1},
            {"events": []},
        ]:
            assert_problem(
                http.post(f"/v1/calls/{web_call}/usage", json=event), 422, "validation_error"
            )
        # A batch with one bad event sends nothing.
        batch = [TYPICAL_PHONE_CALL_USAGE[0], {**TYPICAL_PHONE_CALL_USAGE[1], "sku": "x/y"}]
        assert_problem(http.post(f"/v1/calls/{web_call}/usage", json=batch), 422, "unknown_sku")
        assert http.get(f"/v1/calls/{web_call}").json()["usage_event_count"] == 0
        bad_outcome = http.post(f"/v1/calls/{web_call}/hangup", json={"outcome": "exploded"})
        assert_problem(bad_outcome, 422, "validation_error")
        assert_problem(
            http.post("/v1/calls/nope-1/usage", json=TYPICAL_PHONE_CALL_USAGE[0]), 404, "not_found"
        )
        assert_problem(
            http.post("/v1/calls/nope-1/hangup", json={"outcome": "completed"}), 404, "not_found"
        )
        assert_problem(http.get("/v1/calls/nope-1"), 404, "not_found")
        other = create_account(call_stack, topup_paisa=10000)
        reuse = http.post(
            "/v1/calls", json={"call_id": web_call, "account_id": other.id, "channel": "web"}
        )
        assert_problem(reuse, 409, "conflict")
        # A failed call is not charged: the hold is voided.
        http.post(f"/v1/calls/{web_call}/usage", json=TYPICAL_PHONE_CALL_USAGE[0])
        hangup = http.post(f"/v1/calls/{web_call}/hangup", json={"outcome": "failed"})
        assert hangup.status_code == 202
        call = wait_finalized(http, web_call)
        assert call["outcome"] == "failed" and call["breakdown"]["total_paisa"] == 0
        repeat = http.post(f"/v1/calls/{web_call}/hangup", json={"outcome": "completed"})
        assert repeat.status_code == 202 and repeat.json()["outcome"] == "failed"
    assert ledger_state(call_stack, account) == before


def test_calls_list_is_newest_first_and_paginated(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(call_stack, topup_paisa=100000)
    with call_stack.client(orchestrator_key) as http:
        ids = [authorize(http, account.id, "chat") for _ in range(3)]
    with call_stack.client(account.key) as http:
        first = http.get(f"/v1/accounts/{account.id}/calls", params={"limit": 2}).json()
        second = http.get(
            f"/v1/accounts/{account.id}/calls",
            params={"limit": 2, "cursor": first["next_cursor"]},
        ).json()
        bad = http.get(f"/v1/accounts/{account.id}/calls", params={"cursor": "garbage"})
    assert [c["call_id"] for c in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert all(c["status"] == "active" for c in first["items"])
    assert_problem(bad, 422, "validation_error")


def test_idempotent_authorize_and_usage_replay(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    account = create_account(call_stack, topup_paisa=10000)
    with call_stack.client(orchestrator_key) as http:
        call_id = unique("idem-call")
        body = {"call_id": call_id, "account_id": account.id, "channel": "phone"}
        key = {"Idempotency-Key": unique("k")}
        first = http.post("/v1/calls", json=body, headers=key)
        replay = http.post("/v1/calls", json=body, headers=key)
        plain = http.post("/v1/calls", json=body)
        assert first.status_code == replay.status_code == plain.status_code == 200
        assert first.json() == replay.json() == plain.json()
        assert replay.headers["Idempotent-Replayed"] == "true"
        usage_key = {"Idempotency-Key": unique("k")}
        event = TYPICAL_PHONE_CALL_USAGE[2]
        assert (
            http.post(f"/v1/calls/{call_id}/usage", json=event, headers=usage_key).status_code
            == 202
        )
        other = {**event, "event_id": "tts-2"}
        conflict = http.post(f"/v1/calls/{call_id}/usage", json=other, headers=usage_key)
        assert_problem(conflict, 409, "conflict")
        assert (
            http.post(f"/v1/calls/{call_id}/hangup", json={"outcome": "voicemail"}).status_code
            == 202
        )
        call = wait_finalized(http, call_id)
    # 550 characters of TTS: 220 + margin 66.
    assert call["breakdown"]["tts_paisa"] == 220 and call["breakdown"]["total_paisa"] == 286
    assert ledger_state(call_stack, account)[0]["available_paisa"] == 15000 - 286


def test_concurrent_authorizations_never_overspend(
    call_stack: RunningStack, orchestrator_key: str
) -> None:
    """₹50 promo, ₹10 minimum, ₹10 hold per call: exactly 5 of 10 simultaneous calls pass."""
    account = create_account(call_stack)
    call_ids = [unique("burst") for _ in range(10)]

    def attempt(call_id: str) -> int:
        with call_stack.client(orchestrator_key) as http:
            body = {"call_id": call_id, "account_id": account.id, "channel": "chat"}
            return http.post("/v1/calls", json=body).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(attempt, call_ids))
    assert sorted(statuses) == [200] * 5 + [402] * 5
    balance = ledger_state(call_stack, account)[0]
    assert balance["reserved_paisa"] == 5000 and balance["available_paisa"] == 5000
    with call_stack.client(orchestrator_key) as http:
        for call_id, status in zip(call_ids, statuses, strict=True):
            if status == 200:
                hangup = http.post(f"/v1/calls/{call_id}/hangup", json={"outcome": "no_answer"})
                assert hangup.status_code == 202
        for call_id in call_ids:
            wait_finalized(http, call_id)
    assert ledger_state(call_stack, account)[0]["reserved_paisa"] == 0


def test_concurrent_requests_with_one_idempotency_key_post_once(
    call_stack: RunningStack,
) -> None:
    account = create_account(call_stack)
    key = {"Idempotency-Key": unique("race")}
    body = {"amount_paisa": 1234, "payment_reference": unique("pay")}

    def attempt(_: int) -> int:
        with call_stack.client(call_stack.admin_key) as http:
            response = http.post(f"/v1/accounts/{account.id}/topups", json=body, headers=key)
            return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert set(statuses) <= {201, 409} and 201 in statuses
    balance, transactions = ledger_state(call_stack, account)
    assert balance["paid_paisa"] == 1234 and len(transactions) == 2


async def test_python_client_and_http_api_drive_the_same_workflow(
    call_stack: RunningStack, orchestrator_key: str, workflow_env: WorkflowEnvironment
) -> None:
    """Half of a call through orchestrator_client, half over HTTP: one workflow, one decision,
    events deduplicated across both paths, one charge of 442."""
    account = create_account(call_stack, topup_paisa=10000)
    billing = BillingClient(workflow_env.client, task_queue=TASK_QUEUE)
    call_id = unique("mixed")
    decision = await billing.authorize(call_id, account.id, "phone")
    assert decision.authorized
    with call_stack.client(orchestrator_key) as http:
        body = {"call_id": call_id, "account_id": account.id, "channel": "phone"}
        over_http = http.post("/v1/calls", json=body)
        assert over_http.status_code == 200
        assert over_http.json() == {"call_id": call_id, **asdict(decision)}
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE[:2])
        rest = http.post(f"/v1/calls/{call_id}/usage", json=TYPICAL_PHONE_CALL_USAGE[1:])
        assert rest.status_code == 202  # stt-1 again: counted once
        status = await billing.status(call_id)
        live = http.get(f"/v1/calls/{call_id}").json()
        assert live["breakdown"] == asdict(status.breakdown)
        assert live["breakdown"]["total_paisa"] == 442
        await billing.hangup(call_id, "completed")
        call = wait_finalized(http, call_id)
    assert call["breakdown"]["total_paisa"] == 442
    balance, _ = ledger_state(call_stack, account)
    assert balance["available_paisa"] == 15000 - 442
