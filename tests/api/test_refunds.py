"""POST /v1/accounts/{id}/refunds exactly once per Idempotency-Key: the refund id derives from the
key and the workflow posts the debit, so a retry after a 503 (Temporal unreachable, no worker to
decide in time) returns the same refund and the account is debited once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from core.config import Settings
from db.models import LedgerTransaction
from db.session import get_sessionmaker
from domain.contracts import refund_id_for
from tests.api.conftest import Account, create_account
from tests.support.stack import ApiServer, RunningStack, WorkerProcess
from tests.support.tcp_proxy import TcpProxy


def refund_debits(stack: RunningStack, account: Account, key: str | None = None) -> int:
    """Refund debits of the account (of the refund `key` names, if given)."""
    where = [LedgerTransaction.account_id == account.id, LedgerTransaction.kind == "refund"]
    if key is not None:
        where.append(LedgerTransaction.reference == refund_id_for(account.id, key))
    with get_sessionmaker(stack.database_url)() as session:
        count = session.scalar(select(func.count()).select_from(LedgerTransaction).where(*where))
        return int(count or 0)


def post_refund(
    http: httpx.Client, account: Account, key: str | None, amount: int | None = 5000
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    body = {} if amount is None else {"amount_paisa": amount}
    return http.post(f"/v1/accounts/{account.id}/refunds", json=body, headers=headers)


def api_with(stack: RunningStack, temporal_address: str, **settings: object) -> ApiServer:
    """A second API on the stack's database (and its admin key), on another Temporal address."""
    return ApiServer(
        Settings(
            database_url=stack.database_url,
            temporal_address=temporal_address,
            admin_api_key=stack.admin_key,
            refund_decision_timeout_seconds=2.0,
            **settings,  # type: ignore[arg-type]
        )
    )


def client_of(api: ApiServer, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=api.base_url, headers=headers, timeout=30)


@pytest.fixture
def support(stack: RunningStack, support_key: str) -> Iterator[httpx.Client]:
    with stack.client(support_key) as http:
        yield http


def test_the_key_is_required_and_names_the_refund(
    call_stack: RunningStack, support: httpx.Client
) -> None:
    account = create_account(call_stack, topup_paisa=20_000)
    missing = post_refund(support, account, None)
    assert missing.status_code == 400, missing.text
    assert missing.json()["code"] == "idempotency_key_required"
    assert refund_debits(call_stack, account) == 0

    key = f"refund-{uuid.uuid4().hex}"
    first = post_refund(support, account, key)
    assert first.status_code == 202, first.text
    assert first.json()["id"] == refund_id_for(account.id, key)
    assert first.json()["status"] in {"pending", "completed"}
    again = post_refund(support, account, key)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other_amount = post_refund(support, account, key, 6000)
    assert other_amount.status_code == 409, other_amount.text
    assert refund_debits(call_stack, account) == 1

    too_much = post_refund(support, account, f"refund-{uuid.uuid4().hex}", 15_001)
    assert too_much.status_code == 422 and too_much.json()["code"] == "refund_exceeds_refundable"
    assert refund_debits(call_stack, account) == 1


@pytest.mark.parametrize("connected_before", [True, False], ids=["connected", "first_use"])
def test_temporal_unreachable_is_a_503_and_the_retry_refunds_once(
    call_stack: RunningStack, support_key: str, connected_before: bool
) -> None:
    account = create_account(call_stack, topup_paisa=20_000)
    key = f"refund-{uuid.uuid4().hex}"
    with (
        TcpProxy(call_stack.temporal_address) as proxy,
        api_with(call_stack, proxy.address) as api,
        client_of(api, support_key) as http,
    ):
        if connected_before:  # Temporal goes away under a connected client
            warm = post_refund(http, account, f"refund-{uuid.uuid4().hex}", 1000)
            assert warm.status_code == 202, warm.text
        proxy.cut()
        down = post_refund(http, account, key)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "billing_unavailable"
        assert refund_debits(call_stack, account, key) == 0
        proxy.restore()
        deadline = time.monotonic() + 30
        retry = post_refund(http, account, key)
        while retry.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)  # the client reconnects
            retry = post_refund(http, account, key)
        assert retry.status_code == 202, retry.text
        assert retry.json()["id"] == refund_id_for(account.id, key)
        assert post_refund(http, account, key).json()["id"] == retry.json()["id"]
    assert refund_debits(call_stack, account, key) == 1


def test_no_worker_to_decide_is_a_503_and_the_retry_finds_the_same_refund(
    call_stack: RunningStack, support_key: str
) -> None:
    """The workflow is started but nobody runs it in time (the 503 the old code answered after
    its debit): once a worker is back, the retry returns that refund, debited once."""
    account = create_account(call_stack, topup_paisa=20_000)
    key = f"refund-{uuid.uuid4().hex}"
    queue = f"billing-refunds-{uuid.uuid4().hex[:8]}"
    with (
        api_with(call_stack, call_stack.temporal_address, task_queue=queue) as api,
        client_of(api, support_key) as http,
    ):
        pending = post_refund(http, account, key)
        assert pending.status_code == 503, pending.text
        assert refund_debits(call_stack, account) == 0
        worker_env = {"TASK_QUEUE": queue, "RECONCILER_SCHEDULE": "0"}
        with WorkerProcess(call_stack.database_url, call_stack.temporal_address, env=worker_env):
            deadline = time.monotonic() + 30
            retry = post_refund(http, account, key)
            while retry.status_code == 503 and time.monotonic() < deadline:
                retry = post_refund(http, account, key)
            assert retry.status_code == 202, retry.text
            assert retry.json()["id"] == refund_id_for(account.id, key)
            assert retry.json()["amount_paisa"] == 5000
    assert refund_debits(call_stack, account) == 1
