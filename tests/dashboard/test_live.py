"""The live stream's fan-out (api/dashboard/live.py) in the running API: one listener per
process, one read per change however many tabs an account has open, a revoked key signs its
tabs out at once, and a lost listener connection falls back to polling and comes back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from api.dashboard.live import LiveHub
from db.session import run_in_transaction
from ledger import accounts as ledger_accounts
from ledger import api_keys
from tests.dashboard.conftest import Customer, make_customer
from tests.support.stack import RunningStack


def top_up(factory: sessionmaker[Session], account_id: str) -> None:
    run_in_transaction(
        factory,
        lambda s: ledger_accounts.top_up(
            s, account_id=account_id, amount_paisa=100, payment_reference=uuid.uuid4().hex
        ),
    )


class Tab:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def count(self, name: str) -> int:
        return sum(1 for event, _ in self.events if event == name)


@asynccontextmanager
async def tabs(base_url: str, customer: Customer, count: int) -> AsyncIterator[list[Tab]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        login = await http.post("/login", data={"api_key": customer.api_key})
        assert login.status_code == 303, login.text
        opened = [Tab() for _ in range(count)]

        async def read(tab: Tab) -> None:
            async with http.stream("GET", "/dashboard/events", timeout=None) as response:
                assert response.status_code == 200
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        tab.events.append((event, json.loads(line[6:])))

        tasks = [asyncio.create_task(read(tab)) for tab in opened]
        try:
            await until(lambda: all(tab.count("balance") >= 1 for tab in opened))
            yield opened
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def hub_of(stack: RunningStack) -> LiveHub:
    hub: LiveHub = stack.api.app.state.live_hub
    return hub


async def test_one_read_per_change_for_all_tabs_of_an_account(
    dashboard_stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Fanout Five")
    async with tabs(dashboard_stack.base_url, customer, 5) as opened:
        hub = hub_of(dashboard_stack)
        feed = hub.feeds[customer.account_id]
        assert len(feed.subscribers) == 5
        await asyncio.sleep(0.3)
        reads_before = feed.reads
        balances_before = [tab.count("balance") for tab in opened]
        for _ in range(3):
            top_up(session_factory, customer.account_id)
            await asyncio.sleep(0.3)  # separate changes (bursts are read together)
        await until(
            lambda: all(
                tab.count("balance") == before + 3
                for tab, before in zip(opened, balances_before, strict=True)
            )
        )
        # Five tabs, three changes: three reads, not fifteen (and no polling meanwhile).
        assert feed.reads - reads_before == 3
        last = opened[0].events[-1][1]["balance"]
        assert last["paid_paisa"] == 300
    await until(lambda: customer.account_id not in hub.feeds)  # the last tab closed: feed gone


async def test_a_revoked_key_signs_its_tabs_out_at_once(
    dashboard_stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Revoked Tabs")
    async with tabs(dashboard_stack.base_url, customer, 2) as opened:
        key = run_in_transaction(
            session_factory, lambda s: api_keys.resolve_api_key(s, customer.api_key)
        )
        assert key is not None
        started = time.monotonic()
        run_in_transaction(session_factory, lambda s: api_keys.revoke_api_key(s, key.id))
        await until(lambda: all(tab.count("signed_out") == 1 for tab in opened), timeout=5)
        assert time.monotonic() - started < 2.0  # not the minute-long periodic re-check


async def test_a_lost_listener_falls_back_to_polling_and_reconnects(
    dashboard_stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Listener Lost")
    async with tabs(dashboard_stack.base_url, customer, 1) as [tab]:
        hub = hub_of(dashboard_stack)
        await until(lambda: hub.listening)
        run_in_transaction(
            session_factory,
            lambda s: s.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'billing-live' AND datname = current_database()"
                )
            ),
        )
        await until(lambda: not hub.listening, timeout=25)  # noticed
        before = tab.count("balance")
        top_up(session_factory, customer.account_id)
        await until(lambda: tab.count("balance") == before + 1)  # by a poll, or re-read on resync
        await until(lambda: hub.listening)  # and the listener is back
        top_up(session_factory, customer.account_id)
        await until(lambda: tab.count("balance") == before + 2)
