"""worker.main: what every in-process worker shares."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from core.config import get_settings
from tests.support.calls import running_worker, uid


async def test_workers_share_one_pool_of_activation_threads(
    client: Client, session_factory: sessionmaker[Session]
) -> None:
    """The SDK never shuts down the executor a Worker is given: one pool per process, so
    workers started one after another (as tests do) leave no idle threads behind."""
    for _ in range(3):
        async with running_worker(client, session_factory) as billing:
            decision = await billing.authorize(uid("call"), "acc_does_not_exist", "chat")
            assert not decision.authorized
    threads = [t for t in threading.enumerate() if t.name.startswith("workflow-task")]
    assert 0 < len(threads) <= get_settings().worker_workflow_threads
