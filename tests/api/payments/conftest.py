"""Money-in tests: the real API and worker (uvicorn + `python -m worker`) on the run's
PostgreSQL and Temporal dev server, talking to the Razorpay stand-in through the official SDK;
the stand-in delivers signed webhooks back to the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import Account, create_account, create_key
from tests.support.payments import PaymentsStack, eventually, payments_stack
from tests.support.stack import temporal_address


@pytest.fixture(scope="session")
def pay(database_url: str, workflow_env: WorkflowEnvironment) -> Iterator[PaymentsStack]:
    with payments_stack(database_url, temporal_address(workflow_env)) as running:
        yield running


@pytest.fixture
def customer(pay: PaymentsStack) -> Account:
    return create_account(pay.stack, name="Chai Point", email="billing@chai.example")


@pytest.fixture(scope="session")
def support(pay: PaymentsStack) -> str:
    return create_key(pay.stack, "support")


def checkout(
    pay: PaymentsStack, account: Account, amount_paisa: int = 100_000, **body: Any
) -> dict[str, Any]:
    with pay.stack.client(account.key) as http:
        response = http.post(
            f"/v1/accounts/{account.id}/checkouts", json={"amount_paisa": amount_paisa, **body}
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def balance(pay: PaymentsStack, account: Account) -> dict[str, Any]:
    with pay.stack.client(account.key) as http:
        response = http.get(f"/v1/accounts/{account.id}/balance")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def checkout_status(pay: PaymentsStack, account: Account, checkout_id: str) -> str:
    with pay.stack.client(account.key) as http:
        response = http.get(f"/v1/checkouts/{checkout_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def wait_paid(pay: PaymentsStack, account: Account, paid_paisa: int, timeout: float = 10) -> None:
    eventually(lambda: balance(pay, account)["paid_paisa"] == paid_paisa, timeout=timeout)


def topups(pay: PaymentsStack, account: Account) -> list[dict[str, Any]]:
    with pay.stack.client(account.key) as http:
        response = http.get(f"/v1/accounts/{account.id}/transactions")
    items: list[dict[str, Any]] = response.json()["items"]
    return [t for t in items if t["kind"] == "topup"]


def send_event(
    pay: PaymentsStack, raw: bytes, signature: str | None, event_id: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Razorpay-Signature"] = signature
    if event_id is not None:
        headers["X-Razorpay-Event-Id"] = event_id
    return httpx.post(pay.webhook_url, content=raw, headers=headers, timeout=10)
