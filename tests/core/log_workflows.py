"""A workflow and activities for the activity log interceptor test."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from domain.contracts import CALL_FINALIZE_ACTIVITY
    from domain.ledger_types import FinalizedCall
    from domain.rating import Breakdown


@activity.defn
async def charge(request: dict[str, str]) -> str:
    logging.getLogger("t.act").info("charging")
    return "ok"


@activity.defn
async def no_ids(value: int) -> int:
    return value


@workflow.defn
class LogWorkflow:
    @workflow.run
    async def run(self, account_id: str) -> str:
        timeout = timedelta(seconds=10)
        await workflow.execute_activity(no_ids, 1, start_to_close_timeout=timeout)
        return await workflow.execute_activity(
            charge,
            {"call_id": "c-77", "account_id": account_id},
            start_to_close_timeout=timeout,
        )


@activity.defn(name=CALL_FINALIZE_ACTIVITY)
async def finalize(request: dict[str, str]) -> FinalizedCall:
    priced = Breakdown(40, 50, 220, 30, 340, 102, 442, "0.30")
    return FinalizedCall(request["call_id"], request["account_id"], "completed", True, priced, 1)


@workflow.defn
class FinalizeWorkflow:
    @workflow.run
    async def run(self, call_id: str) -> str:
        result = await workflow.execute_activity(
            finalize,
            {"call_id": call_id, "account_id": "acc_m"},
            start_to_close_timeout=timedelta(seconds=10),
        )
        return result.outcome
