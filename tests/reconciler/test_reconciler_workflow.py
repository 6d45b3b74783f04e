"""ReconcilerWorkflow through a real worker: every step runs as its own activity, a failing
step is reported and the run goes on, and its history replays."""

from __future__ import annotations

from temporalio.worker import Replayer

from domain.contracts import PRUNE_IDEMPOTENCY_STEP, RECONCILER_STEPS
from domain.contracts.reconciler import ReconcilerInput, ReconcilerResult
from tests.support.email import Harness, uid
from workflows.reconciler import ReconcilerWorkflow


async def test_a_run_takes_every_step(harness: Harness) -> None:
    h = harness
    workflow_id = uid("reconciler")
    result: ReconcilerResult = await h.client.execute_workflow(
        ReconcilerWorkflow.run, ReconcilerInput(), id=workflow_id, task_queue=h.task_queue
    )
    assert [report.step for report in result.steps] == list(RECONCILER_STEPS)
    assert result.ok, result
    history = await h.client.get_workflow_handle(workflow_id).fetch_history()
    await Replayer(workflows=[ReconcilerWorkflow]).replay_workflow(history)


async def test_a_failing_step_is_reported_and_the_run_goes_on(harness: Harness) -> None:
    h = harness
    result: ReconcilerResult = await h.client.execute_workflow(
        ReconcilerWorkflow.run,
        ReconcilerInput(steps=["reconcile_no_such_step", PRUNE_IDEMPOTENCY_STEP]),
        id=uid("reconciler"),
        task_queue=h.task_queue,
    )
    failed, pruned = result.steps
    assert failed.step == "reconcile_no_such_step" and failed.error
    assert pruned.step == PRUNE_IDEMPOTENCY_STEP and pruned.error is None
    assert not result.ok
