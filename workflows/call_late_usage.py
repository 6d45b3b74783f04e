"""`CallLateUsageWorkflow` (id `late_usage_workflow_id(call_id)`): late usage of a call whose
`CallBillingWorkflow` has ended (contract §3), for orchestrators on the Python client. A call's
workflow returns its result as soon as the charge is posted, so callers waiting on it are never
held up; usage that comes later is sent here by `BillingClient.report_usage` as the `late_usage`
update (Update-with-Start), which answers synchronously: the adjustment, or `call_ended` after
the window.

Each update runs the `call_late_usage` local activity (one ledger transaction: record the events
once per id, re-price the call, post the difference as a `call_adjustment`). The workflow exists
only for calls that get late usage and ends after a short idle time; a later report starts it
again. Deterministic: no I/O here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        CALL_LATE_USAGE_ACTIVITY,
        CALL_LATE_USAGE_WORKFLOW,
        LATE_USAGE_UPDATE,
    )
    from domain.contracts.call_usage import LateUsage, LateUsageResult, LateUsageStart
    from domain.contracts.calls import usage_events_from_wire
    from domain.ledger_types import REASON_BILLING_UNAVAILABLE
    from workflows.call_state import failure_cause

IDLE = timedelta(seconds=30)  # no report for this long: the workflow ends


@workflow.defn(name=CALL_LATE_USAGE_WORKFLOW)
class CallLateUsageWorkflow:
    @workflow.init
    def __init__(self, start: LateUsageStart) -> None:
        self._call_id = start.call_id
        self._reports = 0
        self._idle_since = 0

    @workflow.run
    async def run(self, start: LateUsageStart) -> None:
        while True:
            self._idle_since = self._reports
            try:
                await workflow.wait_condition(self._reported, timeout=IDLE, timeout_summary="idle")
            except TimeoutError:
                if workflow.all_handlers_finished():
                    return

    def _reported(self) -> bool:
        return self._reports != self._idle_since

    @workflow.update(name=LATE_USAGE_UPDATE)
    async def late_usage(self, payload: Any) -> LateUsageResult:
        """One usage report (`UsageReport` or `UsageBatch` JSON) → its adjustment. Errors
        carry the API's codes: `call_ended`, `not_found`, `unknown_sku`, `validation_error`…"""
        self._reports += 1
        events = [e for e in usage_events_from_wire(payload) or [] if isinstance(e, dict)]
        if not events:
            raise ApplicationError("usage needs at least one event object", type="validation_error")
        batch = f"{workflow.info().run_id}:{self._reports}"
        try:
            result: LateUsageResult = await workflow.execute_local_activity(
                CALL_LATE_USAGE_ACTIVITY,
                LateUsage(self._call_id, batch, events),
                result_type=LateUsageResult,
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)),
            )
            return result
        except (ActivityError, ApplicationError) as exc:
            cause = failure_cause(exc)
            if isinstance(cause, ApplicationError) and cause.non_retryable and cause.type:
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from exc
            raise ApplicationError(
                "billing could not record the usage; retry", type=REASON_BILLING_UNAVAILABLE
            ) from exc
