"""The reconciler's Temporal Schedule, created by the worker at start when missing (and brought
up to date when a deploy changed its steps or queue; a pause set by ops is kept). It starts
`ReconcilerWorkflow` every `RECONCILER_INTERVAL_SECONDS` on the worker's task queue; a run still
going when the next is due makes it skip (overlap policy SKIP). Ops see it in the Temporal UI
under Schedules."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.contracts import (
    RECONCILER_INTERVAL_SECONDS,
    RECONCILER_SCHEDULE_ID,
    RECONCILER_STEPS,
    RECONCILER_WORKFLOW,
    TASK_QUEUE,
)
from domain.contracts.reconciler import ReconcilerInput

log = logging.getLogger(__name__)


def reconciler_schedule_id(task_queue: str) -> str:
    """`billing-reconciler`; a worker on another queue (another database: tests, a second
    stack) gets its own schedule instead of taking this one over."""
    if task_queue == TASK_QUEUE:
        return RECONCILER_SCHEDULE_ID
    return f"{RECONCILER_SCHEDULE_ID}-{task_queue}"


def reconciler_schedule(task_queue: str, interval: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILER_WORKFLOW,
            ReconcilerInput(steps=list(RECONCILER_STEPS)),
            id=reconciler_schedule_id(task_queue),  # runs: <id>-<scheduled time>
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=10),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconciler_schedule(
    client: Client,
    task_queue: str,
    *,
    interval: timedelta = timedelta(seconds=RECONCILER_INTERVAL_SECONDS),
) -> str:
    """Create the schedule when missing, else update it if its definition differs; returns its
    id."""
    schedule_id = reconciler_schedule_id(task_queue)
    wanted = reconciler_schedule(task_queue, interval)
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info("created schedule %s (every %s)", schedule_id, interval)
        return schedule_id
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(schedule_id)
    current = (await handle.describe()).schedule
    if await _same(client, current, wanted):
        return schedule_id

    def update(input: ScheduleUpdateInput) -> ScheduleUpdate:
        state = input.description.schedule.state  # keep a pause (and its note)
        return ScheduleUpdate(
            schedule=Schedule(
                action=wanted.action, spec=wanted.spec, policy=wanted.policy, state=state
            )
        )

    await handle.update(update)
    log.info("updated schedule %s", schedule_id)
    return schedule_id


async def _same(client: Client, current: Schedule, wanted: Schedule) -> bool:
    action, target = current.action, wanted.action
    if not isinstance(action, ScheduleActionStartWorkflow):
        return False
    assert isinstance(target, ScheduleActionStartWorkflow)
    if (action.workflow, action.task_queue) != (target.workflow, target.task_queue):
        return False
    if [i.every for i in current.spec.intervals] != [i.every for i in wanted.spec.intervals]:
        return False
    if current.policy.overlap != wanted.policy.overlap:
        return False
    try:
        [args] = await client.data_converter.decode(list(action.args), [ReconcilerInput])
    except Exception:
        return False
    return isinstance(args, ReconcilerInput) and args == target.args[0]
