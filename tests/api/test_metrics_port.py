"""The API's Prometheus endpoint is on its internal metrics port, not the public one; its ledger
gauges come from a periodic background read, so scrapes never query PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event

from core.config import Settings
from db.session import get_engine
from tests.api.conftest import create_account, unique
from tests.support.stack import ApiServer, RunningStack


def _gauges(server: ApiServer) -> tuple[float, float]:
    text = httpx.get(server.metrics_url).text
    return _plain(text, "billing_active_holds"), _plain(text, "billing_reserved_paisa")


def _plain(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported:\n{text}")


def _db_holds(stack: RunningStack) -> tuple[float, float]:
    with get_engine(stack.database_url).connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT count(*), coalesce(sum(amount_paisa), 0) FROM holds WHERE status = 'active'"
        ).one()
    return float(row[0]), float(row[1])


def _wait_for(expected: tuple[float, float], server: ApiServer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _gauges(server)) != expected:
        assert time.monotonic() < deadline, f"gauges {seen}, ledger {expected}"
        time.sleep(0.05)


@pytest.fixture
def fast_gauges(call_stack: RunningStack) -> Iterator[ApiServer]:
    """A second API on the stack's database and task queue, refreshing its gauges every 0.2 s."""
    settings = Settings(
        database_url=call_stack.database_url,
        temporal_address=call_stack.temporal_address,
        admin_api_key=call_stack.admin_key,
        ledger_gauges_refresh_seconds=0.2,
    )
    with ApiServer(settings) as server:
        yield server


def test_metrics_are_on_the_internal_port_only(stack: RunningStack) -> None:
    with stack.client() as anonymous, stack.client(stack.admin_key) as admin:
        assert anonymous.get("/healthz").status_code == 200  # public, as before
        assert anonymous.get("/metrics").status_code == 404
        assert admin.get("/metrics").status_code == 404
    response = httpx.get(stack.api.metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'billing_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    # The API's Temporal client metrics, in the worker's naming.
    assert "temporal_request_total{" in text
    assert "temporal_request_latency_seconds_bucket{" in text
    assert "billing_active_holds " in text and "billing_reserved_paisa " in text


def test_ledger_gauges_follow_holds_without_querying_at_scrape(
    call_stack: RunningStack, fast_gauges: ApiServer, orchestrator_key: str
) -> None:
    _wait_for(_db_holds(call_stack), fast_gauges)
    account = create_account(call_stack, topup_paisa=5000)
    call_id = unique("gauge-call")
    with call_stack.client(orchestrator_key) as orch:
        authorized = orch.post(
            "/v1/calls", json={"call_id": call_id, "account_id": account.id, "channel": "phone"}
        )
        assert authorized.status_code == 200, authorized.text
        holds, reserved = _db_holds(call_stack)
        _wait_for((holds, reserved), fast_gauges)
        assert holds >= 1 and reserved >= authorized.json()["hold_paisa"]
        orch.post(f"/v1/calls/{call_id}/hangup", json={"outcome": "no_answer"})
        deadline = time.monotonic() + 10
        while _db_holds(call_stack)[0] == holds:
            assert time.monotonic() < deadline, "the hold was never voided"
            time.sleep(0.05)
        _wait_for(_db_holds(call_stack), fast_gauges)


def test_a_scrape_never_queries_the_ledger(stack: RunningStack) -> None:
    statements: list[str] = []
    engine = get_engine(stack.database_url)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        # Only the background refresh reads the ledger for the gauges (every 15 s here).
        if threading.current_thread().name != "ledger-gauges":
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert httpx.get(stack.api.metrics_url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
