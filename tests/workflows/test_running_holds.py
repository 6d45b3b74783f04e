"""Running holds (contract §2): a call's hold follows its running cost within 2 s of the usage
being reported, so calls in progress count against new calls, osmAPI requests and refunds as
they run; running calls are still never cut off. On the old code the hold stayed at ₹10 however
much a call cost."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from db.models import Account
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger import api_requests, balances, refunds
from ledger.errors import RefundNotAllowed
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, uid

MIN_BALANCE = 1000
REPORTS = 16


def checkpoint_batches(ledger: Ledger, call_id: str) -> int:
    """How many checkpoints (and the final charge, if it recorded events) wrote the call's usage."""
    return ledger.tx(
        lambda s: s.execute(
            text("SELECT count(DISTINCT batch) FROM call_usage_events WHERE call_id = :call"),
            {"call": call_id},
        ).scalar_one()
    )


def docs_calls(count: int, tag: str) -> list[dict[str, object]]:
    """`count` docs example calls' worth of usage (442 paisa each), with unique event ids."""
    return [
        {**event, "event_id": f"{event['event_id']}-{tag}-{n}"}
        for n in range(count)
        for event in TYPICAL_PHONE_CALL_USAGE
    ]


async def test_the_hold_follows_the_running_cost_and_counts_against_everything_new(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=10_000, promo=0)  # ₹100
    call_id = uid("call")
    assert (await billing.authorize(call_id, account_id, "phone")).hold_paisa == MIN_BALANCE
    await billing.report_usage(call_id, {"events": docs_calls(20, "a")})
    reported = time.monotonic()
    running = (await billing.status(call_id)).breakdown.total_paisa
    assert running > 8000
    await ledger.wait_for(
        lambda a: a.reserved_paisa == running + MIN_BALANCE, account_id, timeout=10
    )
    assert time.monotonic() - reported < 2.0, "the hold catches up within 2 s"

    # The running call's claim counts against everything new: 10,000 − (running + 1,000) is
    # below the minimum balance.
    spendable = 10_000 - (running + MIN_BALANCE)
    summary = ledger.tx(lambda s: balances.balance_summary(s, account_id))
    assert summary.balance.refundable_paisa == max(0, spendable)
    refused = await billing.authorize(uid("call"), account_id, "web")
    assert not refused.authorized and refused.reason == "insufficient_balance"
    api = ledger.tx(lambda s: api_requests.authorize_api_request(s, account_id=account_id))
    assert not api.authorized
    with pytest.raises(RefundNotAllowed):
        ledger.tx(
            lambda s: refunds.start_refund(
                s, refund_id=uid("ref"), account_id=account_id, amount_paisa=max(1, spendable) + 1
            )
        )

    # The running call is never cut off: it goes on past the balance and is charged in full.
    await billing.report_usage(call_id, {"events": docs_calls(10, "b")})
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    assert result.usage_event_count == 120 and result.charged
    charges = [t.amount_paisa for t in ledger.transactions(account_id, "call_charge")]
    assert charges == [-result.breakdown.total_paisa]
    account = ledger.balance(account_id)
    assert account.reserved_paisa == 0
    assert account.paid_paisa == 10_000 - result.breakdown.total_paisa < 0  # the overdraft


async def test_concurrent_long_calls_on_100_rupees_stop_being_authorized_as_costs_rise(
    billing: BillingClient, ledger: Ledger
) -> None:
    """Calls are started one after another on ₹100, each running up ~₹13 of usage. With a
    flat ₹10 hold all ten would start (10,000 − 9 × 1,000 ≥ 1,000) and run unbounded; with
    running holds (cost + 1,000 each) the fifth is refused: 10,000 − 4 × 2,325 < 1,000."""
    account_id = ledger.account(paid=10_000, promo=0)
    usage = docs_calls(3, "c")
    cost = 1325  # 3 docs calls: llm 120 + stt 149 (180 s × ₹0.0083) + tts 660 + sip 90 + 306
    running: list[str] = []
    refusals: list[str | None] = []
    for n in range(10):
        call_id = uid(f"long-{n}")
        decision = await billing.authorize(call_id, account_id, "phone")
        if not decision.authorized:
            refusals.append(decision.reason)
            continue
        running.append(call_id)
        await billing.report_usage(call_id, {"events": usage})
        expected = len(running) * (cost + MIN_BALANCE)

        def caught_up(account: Account, expected: int = expected) -> bool:
            return account.reserved_paisa == expected

        await ledger.wait_for(caught_up, account_id)
    assert len(running) == 4, "(10,000 − 2,325 k ≥ 1,000) holds for k = 0..3 only"
    assert refusals == ["insufficient_balance"] * 6
    for call_id in running:
        await billing.hangup(call_id, "completed")
    results = [await billing.result(call_id) for call_id in running]
    assert [r.breakdown.total_paisa for r in results] == [cost] * 4
    account = ledger.balance(account_id)
    assert (account.paid_paisa, account.reserved_paisa) == (10_000 - 4 * cost, 0)


async def test_usage_gathers_between_checkpoints_and_each_report_lands_within_2_s(
    billing: BillingClient, ledger: Ledger
) -> None:
    """A call reporting twice a second: every report is in the ledger (and its hold) within
    2 s, yet checkpoints gather reports (usage waits up to 1.5 s for more, not one a second)."""
    account_id = ledger.account(paid=100_000, promo=0)
    call_id = uid("call")
    assert (await billing.authorize(call_id, account_id, "phone")).authorized

    def recorded(event_ids: list[str]) -> bool:
        query = text(
            "SELECT count(*) FROM call_usage_events WHERE call_id = :call AND event_id = ANY(:ids)"
        )
        count = ledger.tx(lambda s: s.execute(query, {"call": call_id, "ids": event_ids}).scalar())
        return count == len(event_ids)

    async def lands(event_ids: list[str], reported: float) -> float:
        while not await asyncio.to_thread(recorded, event_ids):
            await asyncio.sleep(0.05)
        return time.monotonic() - reported

    waits = []
    for n in range(REPORTS):
        events = docs_calls(1, f"r{n}")
        await billing.report_usage(call_id, {"events": events})
        ids = [str(e["event_id"]) for e in events]
        waits.append(asyncio.create_task(lands(ids, time.monotonic())))
        await asyncio.sleep(0.5)
    delays = await asyncio.gather(*waits)
    assert max(delays) < 2.0, delays
    batches = checkpoint_batches(ledger, call_id)
    # 8 s of reports: a checkpoint about every 2 s, and the final charge takes the rest (one
    # batch a second, 9, when reports are not gathered).
    assert batches is not None and 3 <= batches <= 6, batches
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    assert result.usage_event_count == REPORTS * len(TYPICAL_PHONE_CALL_USAGE)


async def test_a_call_reporting_every_second_checkpoints_in_its_reports_own_tasks(
    billing: BillingClient, ledger: Ledger
) -> None:
    """Reports about a second apart: every other report finds usage pending 0.8 s and checkpoints in
    its own workflow task, so no checkpoint timer ever fires (each is cancelled), and every
    report is in the ledger within 2 s."""
    from temporalio.api.enums.v1 import EventType

    account_id = ledger.account(paid=100_000, promo=0)
    call_id = uid("call")
    assert (await billing.authorize(call_id, account_id, "phone")).authorized
    reports = 6
    for n in range(reports):
        await billing.report_usage(call_id, {"events": docs_calls(1, f"s{n}")})
        await asyncio.sleep(1.15)  # between 0.8 and 1.5 s with room for a loaded machine
    batches = checkpoint_batches(ledger, call_id)
    # Reports 2, 4 and 6 checkpoint (each with the one before), the last one over 1 s ago.
    assert batches == reports // 2, batches
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    assert result.usage_event_count == reports * len(TYPICAL_PHONE_CALL_USAGE)
    history = await billing.client.get_workflow_handle(f"call-{call_id}").fetch_history()
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_TIMER_FIRED not in kinds
    assert kinds.count(EventType.EVENT_TYPE_TIMER_CANCELED) >= reports // 2
