"""CallBillingWorkflow end to end: real Temporal dev server, real PostgreSQL, the typed client."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import asdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from dev.temporal import ACCOUNT_ID, CALL_CHANNEL, CALL_OUTCOME
from domain.contracts import (
    CALL_SHAPE,
    CALL_SHAPE_MEMO,
    HANGUP_SIGNAL,
    USAGE_SIGNAL,
    CallState,
    account_workflow_id,
    call_workflow_id,
)
from domain.contracts.calls import CallBreakdown
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger import accounts
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, uid

DOCS_BREAKDOWN = CallBreakdown(
    llm_paisa=40,
    stt_paisa=50,
    tts_paisa=220,
    sip_paisa=30,
    provider_total_paisa=340,
    margin_paisa=102,
    total_paisa=442,
)

STATUS_KEYS = {
    "call_id",
    "account_id",
    "channel",
    "state",
    "outcome",
    "hangup_reason",
    "started_at",
    "ended_at",
    "usage",
    "usage_event_count",
    "duplicate_event_count",
    "rejected_event_count",
    "rejected_events",
    "breakdown",
    "rate_card_version",
    "margin_rate",
    "authorized",
    "runs",
}
RESULT_KEYS = STATUS_KEYS | {"authorization", "charged", "transaction_id"}


async def test_docs_example_call_costs_442_and_lands_within_a_second(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=50_000, promo=5000)
    call_id = uid("call")
    decision = await billing.authorize(call_id, account_id, "phone")
    assert decision.authorized and decision.reason is None
    assert decision.hold_paisa == 1000 and decision.available_paisa == 55_000
    assert decision.rate_card_version is not None
    assert ledger.balance(account_id).reserved_paisa == 1000

    await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
    running = await billing.status(call_id)
    assert running.state == CallState.ACTIVE and running.outcome is None
    assert running.breakdown == DOCS_BREAKDOWN  # the running breakdown, before hangup
    assert running.usage_event_count == 4

    hangup_sent = time.monotonic()
    await billing.hangup(call_id, "completed", reason="caller hung up")
    await ledger.wait_for(lambda a: a.promo_paisa == 5000 - 442, account_id)
    assert time.monotonic() - hangup_sent < 1.0, "the charge must land within a second"

    result = await billing.result(call_id)
    assert result.state == CallState.FINALIZED and result.outcome == "completed"
    assert result.breakdown == DOCS_BREAKDOWN and result.charged is True
    assert result.authorization == decision
    account = ledger.balance(account_id)
    assert (account.paid_paisa, account.promo_paisa, account.reserved_paisa) == (50_000, 4558, 0)
    charges = ledger.transactions(account_id, "call_charge")
    assert [t.amount_paisa for t in charges] == [-442]

    status = await billing.status(call_id)  # a finished call still answers the query
    assert status.state == CallState.FINALIZED and status.ended_at is not None
    assert {(u.component, u.unit, u.quantity) for u in status.usage} == {
        ("llm", "input_tokens", "24000"),
        ("llm", "output_tokens", "2000"),
        ("stt", "audio_seconds", "60"),
        ("tts", "characters", "550"),
        ("sip", "seconds", "60"),
    }
    # What the Temporal UI and untyped clients see: the contract's JSON, typed or not.
    raw_handle = billing.client.get_workflow_handle(call_workflow_id(call_id), result_type=dict)
    raw = await raw_handle.result()
    assert set(raw) == RESULT_KEYS
    assert raw["breakdown"] == asdict(DOCS_BREAKDOWN) and raw["state"] == "finalized"
    assert raw["authorization"] == asdict(decision)
    assert set(await raw_handle.query("status", result_type=dict)) == STATUS_KEYS
    started = (await raw_handle.fetch_history()).events[0]
    start_input = started.workflow_execution_started_event_attributes.input.payloads[0].data
    assert set(json.loads(start_input)) == {"call_id", "account_id", "channel", "started_at"}
    description = await billing.client.get_workflow_handle(call_workflow_id(call_id)).describe()
    attributes = description.typed_search_attributes
    assert attributes.get(ACCOUNT_ID) == account_id
    assert attributes.get(CALL_CHANNEL) == "phone"
    assert attributes.get(CALL_OUTCOME) == "completed"
    # The breakdown is in the result (above); a call the client started with its search
    # attributes writes no memo (one history event and visibility write less): the memo is the
    # history shape the client asked for at start.
    assert await description.memo() == {CALL_SHAPE_MEMO: CALL_SHAPE}
    # ₹545.58 left is far above the ₹10 alert threshold: a charge can only lower the balance,
    # so the account's workflow (alerts live there) is not bothered with it.
    with pytest.raises(RPCError, match="not found"):
        await billing.client.get_workflow_handle(account_workflow_id(account_id)).describe()


async def test_a_call_ending_below_the_alert_threshold_tells_the_account_workflow(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=1200, promo=0)
    call_id = uid("low")
    decision = await billing.authorize(call_id, account_id, "phone")
    assert decision.authorized
    await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    assert result.breakdown.total_paisa == 442  # 1200 - 442 = 758 < 1000
    account_workflow = await billing.client.get_workflow_handle(
        account_workflow_id(account_id)
    ).describe()
    assert account_workflow.task_queue == billing.task_queue


async def test_failed_and_rejected_calls_are_free_and_release_their_hold(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=20_000, promo=0)
    for outcome in ("failed", "rejected", "no_answer", "busy"):
        call_id = uid("call")
        assert (await billing.authorize(call_id, account_id, "phone")).authorized
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE)
        assert ledger.balance(account_id).reserved_paisa == 1000
        await billing.hangup(call_id, outcome, reason="sip 503")
        result = await billing.result(call_id)
        assert result.outcome == outcome and result.charged is False
        assert result.breakdown.total_paisa == 0
        account = ledger.balance(account_id)
        assert (account.paid_paisa, account.reserved_paisa) == (20_000, 0), outcome
    assert ledger.transactions(account_id, "call_charge") == []


async def test_voicemail_is_charged(billing: BillingClient, ledger: Ledger) -> None:
    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("call")
    assert (await billing.authorize(call_id, account_id, "web")).authorized
    await billing.report_usage(
        call_id,
        {"event_id": "stt-1", "component": "stt", "sku": "deepgram/nova-3", "audio_seconds": 2},
    )
    await billing.hangup(call_id, "voicemail")
    result = await billing.result(call_id)
    # 2 s × ₹0.0083 = 1.66 paisa → 2; margin 0.6 → 1; total 3.
    assert result.breakdown.total_paisa == 3 and result.charged is True
    assert ledger.balance(account_id).promo_paisa == 4997


async def test_duplicate_events_and_hangups_count_once(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=10_000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    events = [copy.deepcopy(e) for e in TYPICAL_PHONE_CALL_USAGE]
    await billing.report_usage(call_id, {"events": events + events[:2]})  # dupes in one batch
    await billing.report_usage(call_id, {"events": events})  # a retried batch
    await billing.report_usage(call_id, events[3])  # a retried single event
    again = await billing.authorize(call_id, account_id, "phone")  # a retried authorize
    assert again.authorized and ledger.balance(account_id).reserved_paisa == 1000
    await billing.hangup(call_id, "completed")
    await billing.hangup(call_id, "failed")  # too late: the first hangup wins
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    assert result.outcome == "completed" and result.breakdown == DOCS_BREAKDOWN
    assert result.usage_event_count == 4 and result.duplicate_event_count == 7
    await billing.hangup(call_id, "completed")  # after the end: harmless
    assert [t.amount_paisa for t in ledger.transactions(account_id, "call_charge")] == [-442]
    assert ledger.balance(account_id).paid_paisa == 10_000 - 442


async def test_unknown_sku_and_foreign_component_are_rejected_not_charged(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=10_000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "web")
    await billing.report_usage(
        call_id,
        {
            "events": [
                {"event_id": "a", "component": "llm", "sku": "acme/gpt-9", "input_tokens": 10**6},
                {"event_id": "b", "component": "sip", "sku": "plivo/in-outbound", "seconds": 600},
                {"event_id": "c", "component": "stt", "sku": "deepgram/nova-3"},
                {
                    "event_id": "d",
                    "component": "tts",
                    "sku": "elevenlabs/flash-v2",
                    "characters": 1.5,
                },
                {
                    "event_id": "e",
                    "component": "tts",
                    "sku": "elevenlabs/flash-v2",
                    "characters": 550,
                },
            ]
        },
    )
    status = await billing.status(call_id)
    rejected = {e.event_id: e.code for e in status.rejected_events}
    assert rejected == {
        "a": "unknown_sku",
        "b": "invalid_component",
        "c": "validation_error",
        "d": "validation_error",
    }
    assert "acme/gpt-9" in status.rejected_events[0].message
    assert status.usage_event_count == 1 and status.rejected_event_count == 4
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    # Only the TTS event: 550 × ₹0.004 = 220 paisa + 66 margin.
    assert result.breakdown.tts_paisa == 220 and result.breakdown.total_paisa == 286
    assert ledger.balance(account_id).paid_paisa == 10_000 - 286


async def test_malformed_signals_are_rejected_without_failing_the_workflow_task(
    billing: BillingClient, ledger: Ledger
) -> None:
    """An orchestrator without the typed client may send anything: each bad event is rejected
    and counted, a bad hangup ignored, and the call goes on. (A failed workflow task would stall
    the call: the status query below would time out and the hangup never land.)"""
    account_id = ledger.account(paid=10_000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    handle = billing.client.get_workflow_handle(call_workflow_id(call_id))
    tts = {"component": "tts", "sku": "elevenlabs/flash-v2"}
    await handle.signal(USAGE_SIGNAL, {"events": "not a list"})
    await handle.signal(
        USAGE_SIGNAL,
        {
            "events": [
                "not an object",
                {"event_id": "u1", "component": ["tts"], "sku": "elevenlabs/flash-v2"},
                {"event_id": "u2", **tts, "characters": 1.5},
                {"event_id": "u3", **tts, "characters": 550},
            ]
        },
    )
    await handle.signal(USAGE_SIGNAL, 42)
    for bad_hangup in ({"outcome": ["completed"]}, "completed", {"outcome": "exploded"}, None):
        await handle.signal(HANGUP_SIGNAL, bad_hangup)
    status = await asyncio.wait_for(billing.status(call_id), 10)
    assert status.state == CallState.ACTIVE and status.outcome is None
    assert [(e.event_id, e.code) for e in status.rejected_events] == [
        (None, "validation_error"),
        (None, "validation_error"),
        ("u1", "invalid_component"),
        ("u2", "validation_error"),
        (None, "validation_error"),
    ]
    assert status.usage_event_count == 1 and status.breakdown.total_paisa == 286
    await billing.hangup(call_id, "completed")
    result = await asyncio.wait_for(billing.result(call_id), 10)
    assert result.outcome == "completed" and result.breakdown.total_paisa == 286


async def test_refused_call_ends_refused_without_a_charge(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=999, promo=0)  # below the ₹10 minimum
    call_id = uid("call")
    decision = await billing.authorize(call_id, account_id, "phone")
    assert not decision.authorized and decision.reason == "insufficient_balance"
    assert decision.hold_paisa == 0 and decision.available_paisa == 999
    result = await billing.result(call_id)
    assert result.state == CallState.REFUSED and result.outcome == "refused"
    assert result.breakdown.total_paisa == 0 and result.charged is False
    # Repeating authorize after the workflow closed returns the same decision...
    assert await billing.authorize(call_id, account_id, "phone") == decision
    # ...even once the balance would now allow it: the decision is kept.
    ledger.tx(
        lambda s: accounts.top_up(
            s, account_id=account_id, amount_paisa=5000, payment_reference=uid("pay")
        )
    )
    assert await billing.authorize(call_id, account_id, "phone") == decision
    handle = billing.client.get_workflow_handle(call_workflow_id(call_id))
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.typed_search_attributes.get(CALL_OUTCOME) == "refused"
    assert ledger.transactions(account_id, "call_charge") == []
    assert ledger.balance(account_id).reserved_paisa == 0


async def test_unknown_account_is_refused(billing: BillingClient) -> None:
    decision = await billing.authorize(uid("call"), "acc_does_not_exist", "chat")
    assert not decision.authorized and decision.reason == "account_not_found"


async def test_usage_before_authorization_finishes_is_not_lost(
    billing: BillingClient, ledger: Ledger
) -> None:
    """Signals racing the Update-with-Start are buffered until the decision is known."""
    import asyncio

    account_id = ledger.account(paid=10_000, promo=0)
    call_id = uid("call")
    authorize = asyncio.create_task(billing.authorize(call_id, account_id, "phone"))
    for _ in range(200):  # send as soon as the workflow exists
        try:
            await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
            break
        except Exception:
            await asyncio.sleep(0.005)
    assert (await authorize).authorized
    await billing.hangup(call_id, "completed")
    assert (await billing.result(call_id)).breakdown == DOCS_BREAKDOWN


def _expected_total(events: list[dict[str, object]], prices: dict[tuple[str, str], str]) -> int:
    """The contract's rule computed independently of domain.rating."""
    exact: dict[str, Decimal] = {}
    for event in events:
        for unit in ("input_tokens", "output_tokens", "audio_seconds", "characters", "seconds"):
            if unit in event:
                component = str(event["component"])
                key = (str(event["sku"]), unit)
                exact[component] = exact.get(component, Decimal(0)) + Decimal(
                    str(event[unit])
                ) * Decimal(prices[key])
    one = Decimal(1)
    provider = sum(int((v * 100).quantize(one, rounding=ROUND_HALF_UP)) for v in exact.values())
    margin = int((Decimal(provider) * Decimal("0.30")).quantize(one, rounding=ROUND_HALF_UP))
    return provider + margin


async def test_25000_usage_events_complete_with_the_exact_total(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=1_000_000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    templates: list[dict[str, object]] = [
        {"component": "llm", "sku": "openai/gpt-4o-mini", "input_tokens": 97, "output_tokens": 13},
        {"component": "stt", "sku": "deepgram/nova-3", "audio_seconds": "0.37"},
        {"component": "tts", "sku": "elevenlabs/flash-v2", "characters": 7},
        {"component": "sip", "sku": "plivo/in-outbound", "seconds": "0.5"},
    ]
    events = [{**templates[i % 4], "event_id": f"ev-{i}"} for i in range(25_000)]
    runs_seen = set()
    for start in range(0, len(events), 1000):
        await billing.report_usage(call_id, {"events": events[start : start + 1000]})
        # The query waits for the signal's workflow task: an orchestrator sending a batch a
        # second gives the workflow this pace, so the run limits apply between batches.
        runs_seen.add((await billing.status(call_id)).runs)
    assert max(runs_seen) >= 3, f"a call this long continues as new (runs {runs_seen})"
    # A retry of an early batch after continue-as-new is still recognised (carried ids).
    await billing.report_usage(call_id, {"events": events[-1000:]})
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    prices = {
        ("openai/gpt-4o-mini", "input_tokens"): "0.0000125",
        ("openai/gpt-4o-mini", "output_tokens"): "0.00005",
        ("deepgram/nova-3", "audio_seconds"): "0.0083",
        ("elevenlabs/flash-v2", "characters"): "0.004",
        ("plivo/in-outbound", "seconds"): "0.005",
    }
    expected = _expected_total(events, prices)
    assert result.usage_event_count == 25_000
    assert result.duplicate_event_count == 1000
    assert result.breakdown.total_paisa == expected
    assert ledger.balance(account_id).paid_paisa == 1_000_000 - expected
