"""Browser-test harness for the dashboard: a real uvicorn on a free port serving the dashboard
router against the run's test database, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.orm import Session, sessionmaker

import api.dashboard
from db.session import run_in_transaction
from domain.ledger_types import FinalizeCallRequest
from domain.rating import UsageTotals, validate_usage_event
from ledger import service
from ledger.service import LedgerPolicy

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian chromium is missing: run `make browser` (apt-get install chromium)")
    return path


class ServerThread:
    """uvicorn in a background thread on a socket bound to an ephemeral port."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def dashboard_url(session_factory: sessionmaker[Session], database_url: str) -> Iterator[str]:
    app = FastAPI()
    app.state.session_factory = session_factory
    app.state.database_url = database_url
    app.include_router(api.dashboard.router)
    with ServerThread(app) as server:
        yield server.base_url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-IN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        # 4xx answers the tests provoke on purpose are logged as "Failed to load resource".
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield page
    await context.close()
    # A script error on any page is a failure, even if the assertions happened to pass.
    assert not errors, errors


@dataclass(frozen=True)
class Customer:
    account_id: str
    api_key: str
    name: str


def make_customer(
    factory: sessionmaker[Session],
    name: str,
    *,
    top_up_paisa: int = 0,
    welcome_paisa: int = 5000,
) -> Customer:
    policy = LedgerPolicy(welcome_promo_paisa=welcome_paisa)
    account = run_in_transaction(
        factory,
        lambda s: service.create_account(
            s, policy, name=name, email=f"{name.split()[0].lower()}@example.com"
        ),
    )
    if top_up_paisa:
        run_in_transaction(
            factory,
            lambda s: service.top_up(
                s,
                account_id=account.id,
                amount_paisa=top_up_paisa,
                payment_reference=f"pay-{account.id}",
            ),
        )
    _, secret = run_in_transaction(
        factory, lambda s: service.create_api_key(s, role="customer", account_id=account.id)
    )
    return Customer(account.id, secret, name)


def start_call(factory: sessionmaker[Session], account_id: str, call_id: str, channel: str) -> None:
    decision = run_in_transaction(
        factory,
        lambda s: service.authorize_call(
            s, LedgerPolicy(), call_id=call_id, account_id=account_id, channel=channel
        ),
    )
    assert decision.authorized, decision


def finish_call(
    factory: sessionmaker[Session],
    call_id: str,
    channel: str,
    events: list[dict[str, object]],
    outcome: str = "completed",
) -> int:
    """Finalize through the ledger as the workflow would; returns the total charged."""
    card = run_in_transaction(factory, lambda s: service.current_rate_card(s))
    totals = UsageTotals()
    for raw in events:
        totals.add(validate_usage_event(raw, channel, card))
    request = FinalizeCallRequest(
        call_id=call_id, outcome=outcome, usage=totals.lines, usage_event_count=len(events)
    )
    result = run_in_transaction(factory, lambda s: service.finalize_call(s, request))
    return result.breakdown.total_paisa


async def sign_in(page: Page, base_url: str, api_key: str) -> None:
    await page.goto(base_url + "/login")
    await page.get_by_test_id("api-key").fill(api_key)
    await page.get_by_test_id("sign-in").click()
    await page.wait_for_url(base_url + "/billing")
