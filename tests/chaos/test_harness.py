"""The load generator and the baseline the benchmark and the chaos tests rely on."""

from __future__ import annotations

import random
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from bench.baseline import BaselineCallWorkflow, noop_authorize, noop_finalize
from bench.load import DEFAULT_CARD, drive_call, make_plan, percentiles, price_events
from domain.channels import is_charged
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.rating import validate_usage_event
from orchestrator_client import BillingClient


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles([i / 1000 for i in range(1, 101)])  # 1 … 100 ms
    assert (p.count, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms) == (100, 50.0, 95.0, 99.0, 100.0)
    assert percentiles([]).p99_ms is None


def test_generator_prices_the_docs_example_like_the_contract() -> None:
    assert price_events(TYPICAL_PHONE_CALL_USAGE, "phone") == 442


def test_plans_are_valid_reproducible_and_priced() -> None:
    plans = [make_plan(f"c{i}", "acc", random.Random(i)) for i in range(200)]
    again = [make_plan(f"c{i}", "acc", random.Random(i)) for i in range(200)]
    assert [p.events for p in plans] == [p.events for p in again]
    for plan in plans:
        assert len(plan.events) == 10
        assert len({e["event_id"] for e in plan.events}) == 10
        for event in plan.events:
            validate_usage_event(event, plan.channel, DEFAULT_CARD)  # raises if not billable
        if is_charged(plan.outcome):
            assert plan.expected_total_paisa == price_events(plan.events, plan.channel) > 0
        else:
            assert plan.expected_total_paisa == 0
    assert {p.channel for p in plans} == {"phone", "web", "whatsapp", "chat"}
    assert any(p.expected_total_paisa == 0 for p in plans)


async def test_baseline_has_the_billing_workflows_shape(client: Client) -> None:
    """The same BillingClient drives the baseline: authorize, usage (deduplicated by event_id,
    one event or a batch), hangup (first wins), result."""
    queue = f"baseline-{uuid.uuid4().hex[:8]}"
    billing = BillingClient(client, task_queue=queue)
    plan = make_plan(f"base-{uuid.uuid4().hex[:8]}", "acc", random.Random(1))
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BaselineCallWorkflow],
        activities=[noop_authorize, noop_finalize],
    ):
        first = await billing.authorize(plan.call_id, "acc", plan.channel)
        again = await billing.authorize(plan.call_id, "acc", plan.channel)
        assert first.authorized and again == first
        await billing.report_usage(plan.call_id, plan.events[0])
        await billing.report_usage(plan.call_id, {"events": plan.events})  # event 0 repeated
        await billing.hangup(plan.call_id, "completed")
        await billing.hangup(plan.call_id, "failed")  # ignored: the first hangup wins
        result = await billing.result(plan.call_id)
        assert result.usage_event_count == 10
        assert result.outcome == "completed"
        other = make_plan(f"base-{uuid.uuid4().hex[:8]}", "acc", random.Random(2))
        sample = await drive_call(billing, other, batched=False, timeout=60)
        assert sample.ok and sample.authorize_s and sample.hangup_to_result_s
        assert sample.result is not None and sample.result.usage_event_count == 10
