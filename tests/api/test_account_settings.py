"""`PATCH /v1/accounts/{id}`: a customer changes its own alert threshold (₹0 to ₹10,00,000),
an admin also name, email and margin rate; a new threshold applies from the next crossing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AlertOutbox
from tests.api.conftest import Account, create_account, unique
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
    threshold(stack, account, 0)
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


def threshold(stack: RunningStack, account: Account, paisa: int) -> None:
    response = patch(stack, account.key, account.id, {"alert_threshold_paisa": paisa})
    assert response.status_code == 200, response.text


def crossings(factory: sessionmaker[Session], account_id: str) -> list[AlertOutbox]:
    with factory() as session:
        rows = session.scalars(
            select(AlertOutbox).where(AlertOutbox.account_id == account_id).order_by(AlertOutbox.id)
        )
        return list(rows)


async def test_a_new_threshold_applies_from_the_next_crossing(
    stack: RunningStack, session_factory: sessionmaker[Session], orchestrator_key: str
) -> None:
    assert stack.worker is not None, "alert delivery needs the billing worker"
    account = create_account(stack, topup_paisa=5000)  # ₹100 available, alert below ₹10

    # Lowered or raised but still at or under the balance: no alert for the change itself.
    threshold(stack, account, 9_990)
    assert crossings(session_factory, account.id) == []

    # The next debit below the new threshold is the crossing, against the new threshold.
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
    [crossed] = crossings(session_factory, account.id)
    assert crossed.payload["threshold_paisa"] == 9_990
    assert crossed.payload["available_paisa"] < 9_990

    # Still below: a higher threshold is not a second alert; at or under the balance re-arms,
    # and raising it above the balance again is the next crossing (handed to the worker).
    threshold(stack, account, 50_000)
    assert len(crossings(session_factory, account.id)) == 1
    threshold(stack, account, 0)
    with stack.client(stack.admin_key) as admin:  # a new balance version for the next crossing
        topup = admin.post(
            f"/v1/accounts/{account.id}/topups",
            json={"amount_paisa": 100, "payment_reference": unique("pay")},
        )
        assert topup.status_code == 201, topup.text
    threshold(stack, account, 50_000)
    rows = crossings(session_factory, account.id)
    assert len(rows) == 2 and rows[1].payload["threshold_paisa"] == 50_000
    deadline = asyncio.get_running_loop().time() + 30
    while any(r.delivered_at is None for r in crossings(session_factory, account.id)):
        assert asyncio.get_running_loop().time() < deadline, "alerts not delivered"
        await asyncio.sleep(0.25)
