"""The API tests talk HTTP to a real uvicorn (tests/support/stack.py) on the run's migrated
PostgreSQL database and the session's Temporal dev server, with the billing worker running."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.stack import RunningStack, start_stack, temporal_address, worker_available


@pytest.fixture(scope="session")
def stack(database_url: str, workflow_env: WorkflowEnvironment) -> Iterator[RunningStack]:
    with start_stack(
        database_url, temporal_address(workflow_env), with_worker=worker_available()
    ) as running:
        yield running


@pytest.fixture
def call_stack(stack: RunningStack) -> RunningStack:
    """The stack, required to have the billing worker (calls go through CallBillingWorkflow)."""
    assert stack.worker is not None, "the billing worker (python -m worker) is not available"
    return stack


@pytest.fixture
def admin(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client(stack.admin_key) as http:
        yield http


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Account:
    id: str
    key: str
    created: dict[str, Any]


def create_account(stack: RunningStack, *, topup_paisa: int = 0, **fields: Any) -> Account:
    with stack.client(stack.admin_key) as http:
        body = {"name": "Acme Clinics", "email": "billing@acme.example", **fields}
        response = http.post("/v1/accounts", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        account_id = created["account"]["id"]
        if topup_paisa:
            topup = http.post(
                f"/v1/accounts/{account_id}/topups",
                json={"amount_paisa": topup_paisa, "payment_reference": unique("pay")},
            )
            assert topup.status_code == 201, topup.text
    return Account(account_id, created["api_key"]["key"], created)


def create_key(stack: RunningStack, role: str, account_id: str | None = None) -> str:
    with stack.client(stack.admin_key) as http:
        body: dict[str, Any] = {"role": role}
        if account_id:
            body["account_id"] = account_id
        response = http.post("/v1/api-keys", json=body)
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key


@pytest.fixture(scope="session")
def orchestrator_key(stack: RunningStack) -> str:
    return create_key(stack, "orchestrator")


@pytest.fixture(scope="session")
def support_key(stack: RunningStack) -> str:
    return create_key(stack, "support")
