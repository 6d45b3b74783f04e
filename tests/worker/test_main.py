"""worker.main: what every in-process worker shares."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.config import Settings, get_settings
from tests.support.calls import running_worker, uid
from worker.main import worker_tuning


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


def test_worker_tuning_takes_runner_threads_and_polls_from_the_settings() -> None:
    """The billing worker and the bench's baseline and no-holds workers are tuned alike."""
    tuned = worker_tuning(
        Settings(
            workflow_sandbox=False,
            worker_workflow_threads=3,
            worker_workflow_task_polls=7,
            worker_nonsticky_poll_ratio=0.3,
        )
    )
    assert isinstance(tuned["workflow_runner"], UnsandboxedWorkflowRunner)
    assert tuned["workflow_task_executor"]._max_workers == 3
    assert tuned["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(7)
    assert tuned["nonsticky_to_sticky_poll_ratio"] == 0.3
    sandboxed = worker_tuning(Settings(workflow_sandbox=True))
    assert isinstance(sandboxed["workflow_runner"], SandboxedWorkflowRunner)
    assert sandboxed["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(10)
