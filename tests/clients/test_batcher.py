"""The client distribution's `BillingClient` and `UsageBatcher` against the real dev server and
billing worker: batches flush on size, on time, before the hangup and on close; a send whose
reply is lost is retried with the same event ids and counted once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
import temporalio.service
from osmtalk_billing_client import (
    BillingClient,
    InvalidRequest,
    UsageBatcher,
    UsageRejected,
    llm_usage,
    sip_usage,
    stt_usage,
    tts_usage,
)
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.support.calls import Ledger, running_worker, uid


def typical_call() -> list[Any]:
    """docs' example call (₹4.42): the same usage as domain.default_rate_card's, typed."""
    return [
        llm_usage("openai/gpt-4o-mini", input_tokens=24000, output_tokens=2000),
        stt_usage("deepgram/nova-3", audio_seconds=60),
        tts_usage("elevenlabs/flash-v2", characters=550),
        sip_usage("plivo/in-outbound", seconds=60),
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def billing(
    workflow_env: WorkflowEnvironment, session_factory: sessionmaker[Session]
) -> AsyncIterator[Any]:
    queue = uid("client-pkg")
    async with running_worker(workflow_env.client, session_factory, task_queue=queue):
        yield BillingClient(workflow_env.client, task_queue=queue)


async def _status_count(billing: BillingClient, call_id: str, expected: int) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (await billing.status(call_id)).usage_event_count != expected:
        assert loop.time() - started < 5, await billing.status(call_id)
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_typed_events_match_the_rate_card_usage() -> None:
    from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE

    typed = [e.to_wire() for e in typical_call()]
    for event, expected in zip(typed, TYPICAL_PHONE_CALL_USAGE, strict=True):
        assert {k: v for k, v in event.items() if k != "event_id"} == {
            k: v for k, v in expected.items() if k != "event_id"
        }
    assert stt_usage("x", Decimal("12.50")).audio_seconds == "12.50"
    with pytest.raises(UsageRejected):
        sip_usage("x", 1.5)  # type: ignore[arg-type]
    with pytest.raises(UsageRejected):
        sip_usage("x", -1)


async def test_batches_flush_on_size_time_hangup_and_the_call_is_charged(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("batched")
    assert (await billing.authorize(call_id, account_id, "phone")).authorized
    events = typical_call()
    async with UsageBatcher(billing, call_id, interval=0.3, max_events=2) as usage:
        await usage.add(events[0])
        await usage.add(events[1])  # the second fills the batch: sent at once
        assert usage.pending == 0
        assert (await billing.status(call_id)).usage_event_count == 2
        await usage.add(events[2])  # alone: sent by the timer
        assert usage.pending == 1
        waited = await _status_count(billing, call_id, 3)
        assert waited < 1.5 and usage.pending == 0
        await usage.add(events[3])
        await usage.hangup("completed")  # flushes first
        assert usage.pending == 0
        with pytest.raises(InvalidRequest):
            await usage.add(llm_usage("openai/gpt-4o-mini", input_tokens=1))
    result = await billing.result(call_id)
    assert result.usage_event_count == 4 and result.duplicate_event_count == 0
    assert result.charged and result.breakdown.total_paisa == 442
    assert ledger.balance(account_id).promo_paisa == 5000 - 442


async def test_close_flushes_what_is_queued(billing: BillingClient, ledger: Ledger) -> None:
    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("closing")
    assert (await billing.authorize(call_id, account_id, "web")).authorized
    usage = UsageBatcher(billing, call_id, interval=3600, max_events=100)
    for event in typical_call()[:3]:
        await usage.add(event)
    assert usage.pending == 3
    await usage.close()
    assert usage.pending == 0
    assert (await billing.status(call_id)).usage_event_count == 3
    await billing.hangup(call_id, "no_answer")


class LostReplies(BillingClient):
    """Delivers each of the first `losses` usage signals, then fails as if its reply was lost."""

    def __init__(self, inner: BillingClient, losses: int) -> None:
        super().__init__(inner.client, inner.task_queue)
        self.losses = losses
        self.sent: list[list[str]] = []

    async def report_usage(self, call_id: str, events: Any) -> None:
        await super().report_usage(call_id, events)
        self.sent.append([e["event_id"] for e in events])
        if self.losses:
            self.losses -= 1
            raise temporalio.service.RPCError(
                "reply lost", temporalio.service.RPCStatusCode.UNAVAILABLE, b""
            )


async def test_a_lost_reply_is_retried_with_the_same_ids_and_counted_once(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("retried")
    assert (await billing.authorize(call_id, account_id, "phone")).authorized
    flaky = LostReplies(billing, losses=2)
    usage = UsageBatcher(flaky, call_id, interval=3600, backoff=0.01)
    ids = [await usage.add(event) for event in typical_call()]
    assert await usage.flush() == 4
    assert flaky.sent == [ids, ids, ids]  # the same batch, the same ids, three times
    await usage.hangup("completed")
    result = await billing.result(call_id)
    assert result.usage_event_count == 4 and result.duplicate_event_count == 8
    assert result.breakdown.total_paisa == 442
    assert ledger.balance(account_id).promo_paisa == 5000 - 442


async def test_retries_give_up_keep_the_events_and_refusals_surface(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("gives-up")
    assert (await billing.authorize(call_id, account_id, "chat")).authorized
    flaky = LostReplies(billing, losses=10)
    usage = UsageBatcher(flaky, call_id, interval=3600, attempts=2, backoff=0.01)
    await usage.add(llm_usage("openai/gpt-4o-mini", input_tokens=100_000, event_id="only"))
    with pytest.raises(temporalio.service.RPCError):
        await usage.flush()
    assert usage.pending == 1  # kept for the next flush, same id
    flaky.losses = 0
    assert await usage.flush() == 1
    status = await billing.status(call_id)
    assert status.usage_event_count == 1 and status.duplicate_event_count == 2
    await usage.hangup("completed")
    assert (await billing.result(call_id)).charged
