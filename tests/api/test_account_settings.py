"""`PATCH /v1/accounts/{id}`: a customer changes its own alert threshold (₹0 to ₹10,00,000),
an admin also name, email and margin rate; a new threshold applies from the next crossing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.contracts import STATUS_QUERY, account_workflow_id
from domain.contracts.accounts import AccountStatus
from tests.api.conftest import create_account, unique
from tests.support.stack import RunningStack


def patch(stack: RunningStack, key: str | None, account_id: str, body: Any) -> Any:
    with stack.client(key) as http:
        return http.patch(f"/v1/accounts/{account_id}", json=body)


def test_a_customer_sets_its_own_alert_threshold(stack: RunningStack, support_key: str) -> None:
    account = create_account(stack)
    response = patch(stack, account.key, account.id, {"alert_threshold_paisa": 50_000})
    assert response.status_code == 200, response.text
    assert response.json()["alert_threshold_paisa"] == 50_000
    with stack.client(account.key) as http:
        assert http.get(f"/v1/accounts/{account.id}").json()["alert_threshold_paisa"] == 50_000
        assert (
            http.get(f"/v1/accounts/{account.id}/balance").json()["alert_threshold_paisa"] == 50_000
        )
    # The limits are inclusive; null goes back to the minimum balance.
    assert patch(stack, account.key, account.id, {"alert_threshold_paisa": 0}).status_code == 200
    top = patch(stack, account.key, account.id, {"alert_threshold_paisa": 10_00_000_00})
    assert top.status_code == 200, top.text
    reset = patch(stack, account.key, account.id, {"alert_threshold_paisa": None})
    assert reset.status_code == 200 and reset.json()["alert_threshold_paisa"] is None
    with stack.client(account.key) as http:
        balance = http.get(f"/v1/accounts/{account.id}/balance").json()
    assert balance["alert_threshold_paisa"] == balance["min_balance_paisa"]

    other = create_account(stack)
    assert patch(stack, other.key, account.id, {"alert_threshold_paisa": 1}).status_code == 404
    refused = patch(stack, support_key, account.id, {"alert_threshold_paisa": 1})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert patch(stack, None, account.id, {"alert_threshold_paisa": 1}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"alert_threshold_paisa": -1},
        {"alert_threshold_paisa": 10_00_000_01},
        {"alert_threshold_paisa": 100.5},
        {"alert_threshold_paisa": "5000"},
        {"alert_threshold": 5000},
        {"name": ""},
        {"email": "not-an-address"},
        {"margin_rate": "-0.1"},
    ],
)
def test_bad_settings_are_422_and_change_nothing(stack: RunningStack, body: Any) -> None:
    account = create_account(stack, alert_threshold_paisa=2500)
    with stack.client(stack.admin_key) as admin:
        before = admin.get(f"/v1/accounts/{account.id}").json()
    response = patch(stack, stack.admin_key, account.id, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    with stack.client(stack.admin_key) as admin:
        assert admin.get(f"/v1/accounts/{account.id}").json() == before


def test_admin_fields(stack: RunningStack) -> None:
    account = create_account(stack)
    refused = patch(
        stack, account.key, account.id, {"name": "Mine now", "alert_threshold_paisa": 5}
    )
    assert refused.status_code == 403 and "name" in refused.json()["detail"]
    body = {"name": "Acme Health", "email": "ops@acme.example", "margin_rate": "0.25"}
    response = patch(stack, stack.admin_key, account.id, body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["name"], out["email"], out["margin_rate"]) == (
        "Acme Health",
        "ops@acme.example",
        "0.25",
    )
    # Only what is sent changes; the same Idempotency-Key replays.
    with stack.client(stack.admin_key) as admin:
        headers = {"Idempotency-Key": unique("patch")}
        first = admin.patch(
            f"/v1/accounts/{account.id}", json={"margin_rate": None}, headers=headers
        )
        again = admin.patch(
            f"/v1/accounts/{account.id}", json={"margin_rate": None}, headers=headers
        )
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["margin_rate"] == "0.30" and first.json()["name"] == "Acme Health"


async def _status(client: Client, account_id: str) -> AccountStatus:
    handle = client.get_workflow_handle(account_workflow_id(account_id))
    return await handle.query(STATUS_QUERY, result_type=AccountStatus)


async def _wait(client: Client, account_id: str, done: Any, timeout: float = 20.0) -> AccountStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            status = await _status(client, account_id)
            if done(status):
                return status
        except Exception:  # the workflow may not have started yet
            status = None
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"account workflow never got there: {status}")
        await asyncio.sleep(0.2)


async def test_a_new_threshold_applies_from_the_next_crossing(
    stack: RunningStack, workflow_env: WorkflowEnvironment, orchestrator_key: str
) -> None:
    assert stack.worker is not None, "the account workflow needs the billing worker"
    client = workflow_env.client
    account = create_account(stack, topup_paisa=5000)  # ₹100 available, alert below ₹10
    status = await _wait(client, account.id, lambda s: s.state.available_paisa == 10_000)
    assert status.state.crossings == 0 and status.state.threshold_paisa == 1000

    # Above the current balance: no alert for the change itself...
    response = patch(stack, account.key, account.id, {"alert_threshold_paisa": 9_990})
    assert response.status_code == 200, response.text
    await asyncio.sleep(1.0)
    assert (await _status(client, account.id)).state.crossings == 0

    # ...the next debit is the crossing, measured against the new threshold.
    with stack.client(orchestrator_key) as http:
        charged = http.post(
            "/v1/api-usage",
            json={
                "request_id": unique("req"),
                "account_id": account.id,
                "sku": "openai/gpt-4o-mini",
                "input_tokens": 40_000,
                "output_tokens": 3_000,
            },
        )
    assert charged.status_code == 200, charged.text
    status = await _wait(client, account.id, lambda s: s.state.crossings == 1)
    assert status.state.threshold_paisa == 9_990
    assert status.state.available_paisa is not None and status.state.available_paisa < 9_990
