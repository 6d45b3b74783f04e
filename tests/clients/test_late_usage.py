"""The client distribution's late usage (CONTRACT.md §3): usage for a call whose workflow has
ended is answered with its adjustment through `CallLateUsageWorkflow`, repeats change nothing,
and after the window it is `CallEnded`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from osmtalk_billing_client import BillingClient, CallEnded, LateUsageResult, llm_usage
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from tests.support.calls import Ledger, running_worker, uid


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def billing(
    workflow_env: WorkflowEnvironment, session_factory: sessionmaker[Session]
) -> AsyncIterator[Any]:
    queue = uid("client-pkg-late")
    async with running_worker(workflow_env.client, session_factory, task_queue=queue):
        yield BillingClient(workflow_env.client, task_queue=queue)


def charged(ledger: Ledger, account_id: str, call_id: str) -> int:
    return -sum(
        t.amount_paisa
        for t in ledger.transactions(account_id)
        if t.reference == call_id and t.kind in {"call_charge", "call_adjustment"}
    )


async def test_late_usage_is_an_adjustment_then_call_ended_after_the_window(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=10_000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
    await billing.hangup(call_id, "completed")
    assert (await billing.result(call_id)).breakdown.total_paisa == 442
    late = llm_usage("openai/gpt-4o-mini", input_tokens=40_000, output_tokens=20_000)
    result = await billing.report_usage(call_id, late)
    assert isinstance(result, LateUsageResult) and result.adjustment_paisa > 0
    assert result.breakdown.total_paisa == 442 + result.adjustment_paisa
    assert charged(ledger, account_id, call_id) == result.breakdown.total_paisa
    again = await billing.report_usage(call_id, late)  # the same event id: nothing changes
    assert again is not None and (again.accepted, again.adjustment_paisa) == (0, 0)
    assert charged(ledger, account_id, call_id) == result.breakdown.total_paisa

    old = uid("call")
    await billing.authorize(old, account_id, "chat")
    ended = (datetime.now(UTC) - timedelta(minutes=16)).isoformat()
    await billing.hangup(old, "completed", ended_at=ended)
    await billing.result(old)
    with pytest.raises(CallEnded):
        await billing.report_usage(old, llm_usage("openai/gpt-4o-mini", input_tokens=10))
