"""Fixtures for the call-workflow tests: a ledger driver and a billing worker (in-process, on
its own task queue) against the session's real Temporal dev server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from dev.temporal import register_search_attributes
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, running_worker


@pytest.fixture
def ledger(session_factory: sessionmaker[Session]) -> Ledger:
    return Ledger(session_factory, LedgerPolicy())


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def billing(
    workflow_env: WorkflowEnvironment, session_factory: sessionmaker[Session]
) -> AsyncIterator[BillingClient]:
    # The dev server registers them at start; a bare target server may not have them yet.
    with contextlib.suppress(Exception):
        await register_search_attributes(workflow_env.client)
    async with running_worker(workflow_env.client, session_factory) as client:
        yield client
