"""`ReconcilerWorkflow`: one run of the reconciler, started every minute by the Temporal Schedule
`billing-reconciler` (worker.schedules creates it; overlapping runs are skipped).

It runs each step named in its input (`ReconcilerInput.steps`, by default
`domain.contracts.RECONCILER_STEPS`) as its own activity, in order: a step that fails (after a
few tries) is reported and the run goes on with the next one. The steps report what they found
(`StepReport.findings`, also metrics and log lines from the activities); the run counts itself
in `billing_reconciler_runs` with result `ok` or `error`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.contracts import RECONCILER_WORKFLOW
    from domain.contracts.reconciler import ReconcilerInput, ReconcilerResult, StepReport

STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3
)


@workflow.defn(name=RECONCILER_WORKFLOW)
class ReconcilerWorkflow:
    @workflow.run
    async def run(self, input: ReconcilerInput) -> ReconcilerResult:
        result = ReconcilerResult()
        for step in input.steps:
            try:
                report = await workflow.execute_activity(
                    step,
                    result_type=StepReport,
                    start_to_close_timeout=timedelta(seconds=50),
                    retry_policy=STEP_RETRY,
                )
            except ActivityError as exc:
                cause = exc.cause or exc
                workflow.logger.warning("reconciler step %s failed: %s", step, cause)
                report = StepReport(step=step, error=str(cause)[:500])
            result.steps.append(report)
        found = {
            f"{report.step}.{kind}": count
            for report in result.steps
            for kind, count in report.findings.items()
            if count
        }
        workflow.logger.info("reconciler run %s: %s", "ok" if result.ok else "error", found)
        workflow.metric_meter().create_counter(
            "billing_reconciler_runs", "Reconciler runs by result"
        ).add(1, {"result": "ok" if result.ok else "error"})
        return result
