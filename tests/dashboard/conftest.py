"""Browser-test harness for the dashboard: the real stack (API with the dashboard, worker) on a
free port against the run's test database and Temporal, and a headless Debian Chromium driven by
Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.session import run_in_transaction
from ledger import accounts as ledger_accounts
from ledger import api_keys
from ledger.policy import LedgerPolicy
from tests.support.ledger_data import finish_call, start_call
from tests.support.stack import RunningStack, start_stack, temporal_address, worker_available

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
__all__ = ["finish_call", "start_call"]  # re-exported for the dashboard tests


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian chromium is missing: run `make browser` (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def dashboard_stack(database_url: str, workflow_env: WorkflowEnvironment) -> Iterator[RunningStack]:
    """The real API (`api.main.create_app`, which mounts the dashboard) under uvicorn on a free
    port, plus the billing worker, on the run's database and Temporal dev server."""
    with start_stack(
        database_url, temporal_address(workflow_env), with_worker=worker_available()
    ) as running:
        yield running


@pytest.fixture(scope="session")
def dashboard_url(dashboard_stack: RunningStack) -> str:
    return dashboard_stack.base_url


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
    account, _ = run_in_transaction(
        factory,
        lambda s: ledger_accounts.create_account(
            s, policy, name=name, email=f"{name.split()[0].lower()}@example.com"
        ),
    )
    if top_up_paisa:
        run_in_transaction(
            factory,
            lambda s: ledger_accounts.top_up(
                s,
                account_id=account.id,
                amount_paisa=top_up_paisa,
                payment_reference=f"pay-{account.id}",
            ),
        )
    _, secret = run_in_transaction(
        factory, lambda s: api_keys.create_api_key(s, role="customer", account_id=account.id)
    )
    return Customer(account.id, secret, name)


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """docs/screenshots/<name>.png, only with BILLING_SCREENSHOTS=1 (refreshing the committed
    pictures is a deliberate step: a plain test run leaves the tree clean)."""
    if os.environ.get("BILLING_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    if full_page and viewport is not None:  # a tall window rather than a stitched page
        height = await page.evaluate("document.documentElement.scrollHeight")
        await page.set_viewport_size({"width": viewport["width"], "height": int(height)})
        await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    if full_page and viewport is not None:
        await page.set_viewport_size(viewport)


async def sign_in(page: Page, base_url: str, api_key: str) -> None:
    await page.goto(base_url + "/login")
    await page.get_by_test_id("api-key").fill(api_key)
    await page.get_by_test_id("sign-in").click()
    await page.wait_for_url(base_url + "/billing")
