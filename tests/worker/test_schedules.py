"""The reconciler's Temporal Schedule: the worker process creates it at start (visible to ops
like any schedule), a triggered run reconciles through that worker, and a worker start brings a
changed definition up to date without undoing an operator's pause."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.contracts import (
    RECONCILER_SCHEDULE_ID,
    RECONCILER_STEPS,
    RECONCILER_WORKFLOW,
    TASK_QUEUE,
)
from domain.contracts.reconciler import ReconcilerResult
from tests.support.email import eventually, uid
from tests.support.stack import WorkerProcess, temporal_address
from worker.schedules import ensure_reconciler_schedule, reconciler_schedule_id


async def test_the_worker_creates_the_schedule_and_a_run_reconciles(
    workflow_env: WorkflowEnvironment, database_url: str
) -> None:
    """`python -m worker` on a queue of its own (its schedule: `billing-reconciler-<queue>`;
    on the default queue it is `billing-reconciler`)."""
    assert reconciler_schedule_id(TASK_QUEUE) == RECONCILER_SCHEDULE_ID == "billing-reconciler"
    client = workflow_env.client
    queue = uid("billing-sched")
    handle = client.get_schedule_handle(reconciler_schedule_id(queue))
    with WorkerProcess(database_url, temporal_address(workflow_env), env={"TASK_QUEUE": queue}):
        description = await eventually(lambda: _describe(handle), timeout=30)
        try:
            action = description.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == RECONCILER_WORKFLOW and action.task_queue == queue
            intervals = [i.every for i in description.schedule.spec.intervals]
            assert intervals == [timedelta(minutes=1)]
            assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            assert not description.schedule.state.paused

            await handle.trigger()

            async def first_run() -> str | None:
                actions = (await handle.describe()).info.recent_actions
                return actions[-1].action.workflow_id if actions else None  # type: ignore[attr-defined]

            workflow_id = await eventually(first_run, timeout=30)
            result = await client.get_workflow_handle(
                workflow_id, result_type=ReconcilerResult
            ).result()
            assert [step.step for step in result.steps] == list(RECONCILER_STEPS)
            assert all(step.error is None for step in result.steps), result
        finally:
            await handle.delete()


async def _describe(handle: ScheduleHandle) -> ScheduleDescription | None:
    try:
        return await handle.describe()
    except RPCError:
        return None  # not created yet


async def test_a_worker_start_updates_the_schedule_and_keeps_a_pause(
    workflow_env: WorkflowEnvironment,
) -> None:
    client = workflow_env.client
    queue = uid("billing-sched")
    schedule_id = await ensure_reconciler_schedule(client, queue)
    assert schedule_id == reconciler_schedule_id(queue) != RECONCILER_SCHEDULE_ID
    handle = client.get_schedule_handle(schedule_id)
    try:
        await handle.pause(note="ops: investigating")
        assert await ensure_reconciler_schedule(client, queue) == schedule_id  # unchanged
        await ensure_reconciler_schedule(client, queue, interval=timedelta(minutes=5))
        description = await handle.describe()
        assert [i.every for i in description.schedule.spec.intervals] == [timedelta(minutes=5)]
        assert description.schedule.state.paused
        assert description.schedule.state.note == "ops: investigating"
    finally:
        await handle.delete()
