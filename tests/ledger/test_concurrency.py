"""Concurrency and idempotency on real PostgreSQL: threads, each with its own connection,
released together by a barrier so the transactions really overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    Account,
    Call,
    CouponRedemption,
    CreditLot,
    Hold,
    JournalEntry,
    LedgerTransaction,
    LotAllocation,
    Refund,
)
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import FinalizeCallRequest
from domain.rating import UsageTotals, validate_usage_event
from ledger import accounts as ledger_accounts
from ledger import api_requests, coupons, rate_cards
from ledger import calls as ledger_calls
from ledger import refunds as ledger_refunds
from ledger.errors import BillingError, InvalidCoupon, RefundNotAllowed
from tests.ledger.conftest import Ledger, uid


def run_together(ledger: Ledger, jobs: Sequence[Callable[[Session], Any]]) -> list[Any]:
    """Run each job in its own thread and transaction, all released at once; returns each
    job's result or the BillingError it raised."""
    barrier = threading.Barrier(len(jobs))

    def one(job: Callable[[Session], Any]) -> Any:
        barrier.wait()
        try:
            return ledger.tx(job)
        except BillingError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(one, jobs))


def typical_request(
    ledger: Ledger, call_id: str, outcome: str = "completed"
) -> FinalizeCallRequest:
    card = ledger.tx(lambda s: rate_cards.current_rate_card(s))
    totals = UsageTotals()
    for raw in TYPICAL_PHONE_CALL_USAGE:
        totals.add(validate_usage_event(raw, "phone", card))
    return FinalizeCallRequest(call_id=call_id, outcome=outcome, usage=totals.lines)


def fingerprint(ledger: Ledger, account_id: str) -> tuple[Any, ...]:
    """Everything an operation on this account could change."""
    with ledger.factory() as s:
        account = s.get(Account, account_id)
        assert account is not None
        counts = tuple(
            s.scalar(select(func.count()).select_from(model).where(column == account_id))
            for model, column in (
                (LedgerTransaction, LedgerTransaction.account_id),
                (JournalEntry, JournalEntry.account_id),
                (CreditLot, CreditLot.account_id),
                (LotAllocation, LotAllocation.account_id),
                (Hold, Hold.account_id),
                (Call, Call.account_id),
                (Refund, Refund.account_id),
                (CouponRedemption, CouponRedemption.account_id),
            )
        )
        lots = tuple(
            s.scalars(
                select(CreditLot.remaining_paisa)
                .where(CreditLot.account_id == account_id)
                .order_by(CreditLot.id)
            )
        )
        holds = tuple(
            s.scalars(select(Hold.status).where(Hold.account_id == account_id).order_by(Hold.id))
        )
        return (
            account.paid_paisa,
            account.promo_paisa,
            account.reserved_paisa,
            account.version,
            counts,
            lots,
            holds,
        )


def test_twenty_concurrent_authorizations_only_let_through_what_the_rule_allows(
    ledger: Ledger,
) -> None:
    account_id = ledger.account(promo=5000)  # room for 5 holds of ₹10 with ₹10 left above 0
    jobs = [
        (
            lambda s, cid=uid("call"): ledger_calls.authorize_call(
                s, ledger.policy, call_id=cid, account_id=account_id, channel="phone"
            )
        )
        for _ in range(20)
    ]
    decisions = run_together(ledger, jobs)
    assert sum(d.authorized for d in decisions) == 5
    assert {d.reason for d in decisions if not d.authorized} == {"insufficient_balance"}
    row = ledger.account_row(account_id)
    assert (row.reserved_paisa, row.promo_paisa) == (5000, 5000)
    assert ledger.active_holds(account_id) == 5
    ledger.assert_consistent(account_id)


def test_two_hundred_concurrent_captures_lose_nothing(ledger: Ledger) -> None:
    account_id = ledger.account(paid=300_000, promo=5000)
    call_ids = [uid("call") for _ in range(200)]

    def authorize_all(s: Session) -> None:  # setup: one transaction, not what is under test
        for call_id in call_ids:
            decision = ledger_calls.authorize_call(
                s, ledger.policy, call_id=call_id, account_id=account_id, channel="phone"
            )
            assert decision.authorized

    ledger.tx(authorize_all)
    assert ledger.account_row(account_id).reserved_paisa == 200_000
    request = typical_request(ledger, "")
    barrier = threading.Barrier(20)

    def capture(call_id: str) -> int:
        if call_ids.index(call_id) < 20:
            barrier.wait()
        result = ledger.tx(
            lambda s: ledger_calls.finalize_call(
                s, FinalizeCallRequest(call_id, "completed", usage=request.usage)
            )
        )
        return result.breakdown.total_paisa

    with ThreadPoolExecutor(max_workers=20) as pool:
        totals = list(pool.map(capture, call_ids))
    assert totals == [442] * 200
    row = ledger.account_row(account_id)
    assert row.reserved_paisa == 0
    assert row.paid_paisa + row.promo_paisa == 305_000 - 200 * 442
    assert row.promo_paisa == 0
    charges = [t for t in ledger.transactions(account_id) if t.kind == "call_charge"]
    assert len(charges) == 200 and sum(t.amount_paisa for t in charges) == -200 * 442
    ledger.assert_consistent(account_id)


def test_the_same_key_at_the_same_time_takes_effect_once(ledger: Ledger) -> None:
    account_id = ledger.account(paid=10_000, promo=5000)
    reference, call_id, request_id, refund_id = uid("pay"), uid("call"), uid("req"), uid("r")
    # Top-ups with one payment reference.
    run_together(
        ledger,
        [
            lambda s: ledger_accounts.top_up(
                s, account_id=account_id, amount_paisa=700, payment_reference=reference
            )
        ]
        * 10,
    )
    # Authorizations of one call, then its finalizations.
    decisions = run_together(
        ledger,
        [
            lambda s: ledger_calls.authorize_call(
                s, ledger.policy, call_id=call_id, account_id=account_id, channel="phone"
            )
        ]
        * 10,
    )
    assert all(d.authorized for d in decisions)
    request = typical_request(ledger, call_id)
    results = run_together(ledger, [lambda s: ledger_calls.finalize_call(s, request)] * 10)
    assert len({r.transaction_id for r in results}) == 1
    # API charges with one request_id.
    run_together(
        ledger,
        [
            lambda s: api_requests.charge_api_usage(
                s,
                request_id=request_id,
                account_id=account_id,
                sku="openai/gpt-4o-mini",
                input_tokens=24000,
                output_tokens=2000,
            )
        ]
        * 10,
    )
    # Refunds with one id.
    refunds = run_together(
        ledger,
        [
            lambda s: ledger_refunds.start_refund(
                s, refund_id=refund_id, account_id=account_id, amount_paisa=300
            )
        ]
        * 10,
    )
    assert {r[0].id for r in refunds} == {refund_id}
    kinds = sorted(t.kind for t in ledger.transactions(account_id))
    assert kinds == sorted(["promo_grant", "topup", "topup", "call_charge", "api_charge", "refund"])
    row = ledger.account_row(account_id)
    assert row.paid_paisa + row.promo_paisa == 15_000 + 700 - 442 - 52 - 300
    assert ledger.active_holds(account_id) == 0
    ledger.assert_consistent(account_id)


@pytest.mark.parametrize("round_", range(6))
def test_concurrent_finalizations_with_different_outcomes_first_wins(
    ledger: Ledger, round_: int
) -> None:
    account_id = ledger.account(promo=5000)
    call_id = uid("call")
    ledger.authorize(account_id, call_id)
    charged = typical_request(ledger, call_id, "completed")
    voided = typical_request(ledger, call_id, "failed")
    jobs: list[Callable[[Session], Any]] = [
        lambda s: ledger_calls.finalize_call(s, charged),
        lambda s: ledger_calls.finalize_call(s, voided),
    ] * 3
    results = run_together(ledger, jobs if round_ % 2 else jobs[::-1])
    assert len({(r.outcome, r.charged) for r in results}) == 1, results
    with ledger.factory() as s:
        call = s.get(Call, call_id)
        assert call is not None
        hold = s.scalars(select(Hold).where(Hold.reference == f"call:{call_id}")).one()
        expected_hold = "captured" if call.outcome == "completed" else "voided"
        assert hold.status == expected_hold
    row = ledger.account_row(account_id)
    assert row.promo_paisa == (5000 - 442 if call.outcome == "completed" else 5000)
    ledger.assert_consistent(account_id)


@pytest.mark.parametrize("round_", range(6))
def test_a_refund_completes_or_fails_never_both(ledger: Ledger, round_: int) -> None:
    account_id = ledger.account(paid=5000, promo=0)
    refund_id = uid("r")
    ledger.tx(
        lambda s: ledger_refunds.start_refund(
            s, refund_id=refund_id, account_id=account_id, amount_paisa=2000
        )
    )
    complete: Callable[[Session], Any] = lambda s: ledger_refunds.complete_refund(  # noqa: E731
        s, refund_id=refund_id, gateway_reference="gw"
    )
    fail: Callable[[Session], Any] = lambda s: ledger_refunds.fail_refund(  # noqa: E731
        s, refund_id=refund_id, reason="declined"
    )
    jobs = [complete, fail] * 2
    run_together(ledger, jobs if round_ % 2 else jobs[::-1])
    refund = ledger.tx(lambda s: ledger_refunds.get_refund(s, refund_id))
    paid = ledger.account_row(account_id).paid_paisa
    if refund.status == "completed":
        assert paid == 3000 and refund.reversal_transaction_id is None
    else:
        assert refund.status == "failed" and paid == 5000
    ledger.assert_consistent(account_id)


def test_two_concurrent_refunds_cannot_exceed_paid(ledger: Ledger) -> None:
    account_id = ledger.account(paid=5000, promo=5000)
    results = run_together(
        ledger,
        [
            lambda s: ledger_refunds.start_refund(
                s, refund_id=uid("r"), account_id=account_id, amount_paisa=4000
            ),
            lambda s: ledger_refunds.start_refund(
                s, refund_id=uid("r"), account_id=account_id, amount_paisa=None
            ),
        ],
    )
    refused = [r for r in results if isinstance(r, RefundNotAllowed)]
    granted = [r for r in results if not isinstance(r, BillingError)]
    assert len(granted) >= 1
    row = ledger.account_row(account_id)
    assert row.paid_paisa >= 0 and row.promo_paisa == 5000
    assert 5000 - row.paid_paisa == sum(r[0].amount_paisa for r in granted)
    if len(granted) == 2:  # the 'all' refund ran second and took what was left
        assert row.paid_paisa == 0
    else:
        assert len(refused) == 1
    ledger.assert_consistent(account_id)


def test_coupon_max_redemptions_hold_under_concurrency(ledger: Ledger) -> None:
    code = "Rush" + uid("")[1:]
    ledger.tx(lambda s: coupons.create_coupon(s, code=code, bonus_paisa=1000, max_redemptions=5))
    accounts = [ledger.account(promo=0) for _ in range(16)]
    results = run_together(
        ledger,
        [
            partial(coupons.redeem_coupon, account_id=account_id, code=code)
            for account_id in accounts
        ],
    )
    assert sum(not isinstance(r, BillingError) for r in results) == 5
    assert all(isinstance(r, InvalidCoupon) for r in results if isinstance(r, BillingError))
    assert sum(ledger.account_row(a).promo_paisa for a in accounts) == 5000
    same_account = run_together(
        ledger,
        [lambda s: coupons.redeem_coupon(s, account_id=accounts[0], code=code)] * 4,
    )
    assert all(isinstance(r, InvalidCoupon) for r in same_account)
    ledger.assert_consistent(*accounts)


def test_repeating_any_operation_with_its_key_changes_nothing(ledger: Ledger) -> None:
    account_id = ledger.account(paid=20_000, promo=5000)
    call_id, void_id, request_id, refund_id, failing_refund = (
        uid("call"),
        uid("call"),
        uid("req"),
        uid("r"),
        uid("r"),
    )
    code = "Again" + uid("")[1:]
    ledger.tx(lambda s: coupons.create_coupon(s, code=code, bonus_paisa=1000))
    grant = uid("grant")
    operations: list[tuple[str, Callable[[Session], Any]]] = [
        (
            "top_up",
            lambda s: ledger_accounts.top_up(
                s, account_id=account_id, amount_paisa=1234, payment_reference=call_id
            ),
        ),
        (
            "grant_promo",
            lambda s: ledger_accounts.grant_promo(
                s, account_id=account_id, amount_paisa=300, grant_key=grant
            ),
        ),
        (
            "authorize",
            lambda s: ledger_calls.authorize_call(
                s, ledger.policy, call_id=call_id, account_id=account_id, channel="phone"
            ),
        ),
        (
            "authorize_void",
            lambda s: ledger_calls.authorize_call(
                s, ledger.policy, call_id=void_id, account_id=account_id, channel="chat"
            ),
        ),
        ("finalize", lambda s: ledger_calls.finalize_call(s, typical_request(ledger, call_id))),
        (
            "finalize_void",
            lambda s: ledger_calls.finalize_call(s, FinalizeCallRequest(void_id, "no_answer")),
        ),
        (
            "api_charge",
            lambda s: api_requests.charge_api_usage(
                s,
                request_id=request_id,
                account_id=account_id,
                sku="openai/gpt-4o",
                input_tokens=1000,
                output_tokens=100,
            ),
        ),
        (
            "start_refund",
            lambda s: ledger_refunds.start_refund(
                s, refund_id=refund_id, account_id=account_id, amount_paisa=500
            ),
        ),
        (
            "complete_refund",
            lambda s: ledger_refunds.complete_refund(s, refund_id=refund_id, gateway_reference="g"),
        ),
        (
            "start_refund_2",
            lambda s: ledger_refunds.start_refund(
                s, refund_id=failing_refund, account_id=account_id, amount_paisa=600
            ),
        ),
        (
            "fail_refund",
            lambda s: ledger_refunds.fail_refund(s, refund_id=failing_refund, reason="declined"),
        ),
        ("redeem_coupon", lambda s: coupons.redeem_coupon(s, account_id=account_id, code=code)),
    ]
    for name, operation in operations:
        ledger.tx(operation)
        after_first = fingerprint(ledger, account_id)
        for _ in range(2):
            try:
                ledger.tx(operation)
            except InvalidCoupon:
                assert name == "redeem_coupon"  # once per account: the repeat is refused
            assert fingerprint(ledger, account_id) == after_first, name
    ledger.assert_consistent(account_id)


def test_mixed_concurrent_workload_keeps_the_books(ledger: Ledger) -> None:
    """Top-ups, authorizations, captures, voids, API charges and refunds racing on two
    accounts; each balance ends at what the operations reported, and every invariant holds."""
    accounts = [ledger.account(paid=20_000, promo=3000) for _ in range(2)]
    usage = typical_request(ledger, "").usage
    expected = {a: 23_000 for a in accounts}
    lock = threading.Lock()

    def book(account_id: str, delta: int) -> None:
        with lock:
            expected[account_id] += delta

    def finalize(s: Session, call_id: str, outcome: str) -> Any:
        return ledger_calls.finalize_call(s, FinalizeCallRequest(call_id, outcome, usage=usage))

    def api_charge(s: Session, account_id: str) -> Any:
        return api_requests.charge_api_usage(
            s,
            request_id=uid("req"),
            account_id=account_id,
            sku="openai/gpt-4o-mini",
            input_tokens=24000,
            output_tokens=2000,
        )

    def refund(s: Session, account_id: str) -> Any:
        return ledger_refunds.start_refund(
            s, refund_id=uid("r"), account_id=account_id, amount_paisa=300
        )

    def worker(seed: int) -> None:
        for i in range(12):
            account_id = accounts[(seed + i) % 2]
            step = (seed * 7 + i) % 5
            if step == 0:
                ledger.top_up(account_id, 500)
                book(account_id, 500)
            elif step in (1, 2):
                call_id = uid("call")
                if ledger.authorize(account_id, call_id).authorized:
                    outcome = "completed" if step == 1 else "busy"
                    result = ledger.tx(partial(finalize, call_id=call_id, outcome=outcome))
                    book(account_id, -result.breakdown.total_paisa)
            elif step == 3:
                record, _ = ledger.tx(partial(api_charge, account_id=account_id))
                book(account_id, -record.total_paisa)
            else:
                try:
                    started, _ = ledger.tx(partial(refund, account_id=account_id))
                    book(account_id, -started.amount_paisa)
                except RefundNotAllowed:
                    pass

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, range(8)))
    for account_id in accounts:
        row = ledger.account_row(account_id)
        assert row.paid_paisa + row.promo_paisa == expected[account_id]
        assert row.reserved_paisa == 0 and ledger.active_holds(account_id) == 0
    ledger.assert_consistent(*accounts)
