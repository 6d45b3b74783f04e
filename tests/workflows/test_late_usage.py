"""Late usage through the Python client (contract §3): usage for a finalized call within the
window re-prices the call over all its usage with its pinned card and posts the difference as a
`call_adjustment`, so the call's breakdown always equals the sum of its transactions; repeats
change nothing; after the window, `CallEnded`. On the old code any usage after the end was
refused and never billed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.rating import UsageTotals, price_usage, validate_usage_event
from ledger import balances, rate_cards
from ledger import calls as ledger_calls
from ledger.invariants import check_ledger
from orchestrator_client import BillingClient, CallEnded, LateUsageResult, UsageRejected
from tests.support.calls import Ledger, uid


def llm(event_id: str, tokens: int) -> dict[str, object]:
    return {
        "event_id": event_id,
        "component": "llm",
        "sku": "openai/gpt-4o-mini",
        "input_tokens": tokens,
        "output_tokens": tokens // 2,
    }


def priced_total(ledger: Ledger, events: list[dict[str, object]]) -> int:
    """The pricing rule over all of a call's usage, independently of the ledger's running sums."""
    card = ledger.tx(lambda s: rate_cards.load_rate_card(s, 1))
    totals = UsageTotals()
    for event in events:
        totals.add(validate_usage_event(event, "phone", card))
    return price_usage(totals.lines, card, Decimal("0.30")).total_paisa


def call_transactions(ledger: Ledger, account_id: str, call_id: str) -> list[int]:
    return [
        t.amount_paisa
        for t in ledger.transactions(account_id)
        if t.reference == call_id and t.kind in {"call_charge", "call_adjustment"}
    ]


def assert_adds_up(ledger: Ledger, account_id: str, call_id: str, total: int) -> None:
    call = ledger.tx(lambda s: ledger_calls.get_call(s, call_id))
    breakdown = ledger_calls.call_breakdown(call)
    assert breakdown.total_paisa == total
    assert breakdown.provider_total_paisa + breakdown.margin_paisa == total
    assert sum(call_transactions(ledger, account_id, call_id)) == -total


async def test_late_usage_is_an_adjustment_and_the_breakdown_stays_the_sum(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=50_000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
    await billing.hangup(call_id, "completed")
    assert (await billing.result(call_id)).breakdown.total_paisa == 442

    usage = list(TYPICAL_PHONE_CALL_USAGE)
    first = llm("late-1", 40_000)
    late = await billing.report_usage(call_id, first)
    usage.append(first)
    assert isinstance(late, LateUsageResult)
    total = priced_total(ledger, usage)
    assert late.accepted == 1 and late.adjustment_paisa == total - 442 > 0
    assert late.breakdown.total_paisa == total
    assert_adds_up(ledger, account_id, call_id, total)

    repeat = await billing.report_usage(call_id, first)  # a repeat changes nothing
    assert repeat is not None
    assert (repeat.accepted, repeat.duplicate_event_count, repeat.adjustment_paisa) == (0, 1, 0)
    assert len(call_transactions(ledger, account_id, call_id)) == 2

    several = [llm("late-2", 1234), llm("late-3", 99_999), first]
    more = await billing.report_usage(call_id, several)
    usage += several[:2]
    assert more is not None and (more.accepted, more.duplicate_event_count) == (2, 1)
    new_total = priced_total(ledger, usage)
    assert more.adjustment_paisa == new_total - total
    assert_adds_up(ledger, account_id, call_id, new_total)
    assert len(call_transactions(ledger, account_id, call_id)) == 3
    call = ledger.tx(lambda s: ledger_calls.get_call(s, call_id))
    assert call.usage_event_count == 7
    # The month's usage includes the adjustments.
    summary = ledger.tx(lambda s: balances.balance_summary(s, account_id))
    assert summary.month_usage_paisa == new_total
    assert summary.balance.paid_paisa == 50_000 - new_total

    with pytest.raises(UsageRejected) as wrong:  # nothing recorded when an event does not fit
        await billing.report_usage(call_id, [llm("late-4", 1), {**llm("late-5", 1), "sku": "x/y"}])
    assert wrong.value.code == "unknown_sku"
    assert ledger.tx(lambda s: ledger_calls.get_call(s, call_id)).usage_event_count == 7
    assert ledger.tx(lambda s: check_ledger(s, [account_id])) == []


async def test_after_the_window_late_usage_is_call_ended(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=5000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    hung_up = datetime.now(UTC) - timedelta(minutes=16)  # the default window is 15 minutes
    await billing.hangup(call_id, "completed", ended_at=hung_up.isoformat())
    await billing.result(call_id)
    with pytest.raises(CallEnded):
        await billing.report_usage(call_id, llm("too-late", 1000))
    assert call_transactions(ledger, account_id, call_id) == []


async def test_usage_racing_the_hangup_is_charged_once_whichever_path_takes_it(
    billing: BillingClient, ledger: Ledger
) -> None:
    """Usage sent right after the hangup reaches the workflow while it finalizes (charged as an
    adjustment before it ends) or after it ended (the late-usage workflow): either way once."""
    account_id = ledger.account(paid=5000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "phone")
    await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
    await billing.hangup(call_id, "completed")
    racing = llm("racing", 50_000)
    await billing.report_usage(call_id, racing)
    await billing.result(call_id)
    await billing.report_usage(call_id, racing)  # and once more, certainly late: a repeat
    total = priced_total(ledger, [*TYPICAL_PHONE_CALL_USAGE, racing])
    for _ in range(50):
        if sum(call_transactions(ledger, account_id, call_id)) == -total:
            break
        await asyncio.sleep(0.1)
    assert_adds_up(ledger, account_id, call_id, total)
    assert ledger.tx(lambda s: ledger_calls.get_call(s, call_id)).usage_event_count == 5
