"""The ledger's money rules on real PostgreSQL, one behaviour per test; every test ends with
the invariant checker over the accounts it touched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Call, CreditLot, Hold, LedgerTransaction, LotAllocation
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import BalanceSnapshot, FinalizeCallRequest
from ledger import accounts as ledger_accounts
from ledger import api_requests, balances, coupons, holds, rate_cards, refunds
from ledger import calls as ledger_calls
from ledger.errors import Conflict, InvalidCoupon, NotFound, RefundNotAllowed, ValidationFailed
from tests.ledger.conftest import Ledger, uid

IST = ZoneInfo("Asia/Kolkata")
TEN_CALLS = [
    {**event, "event_id": f"{event['event_id']}-{i}"}
    for i in range(10)
    for event in TYPICAL_PHONE_CALL_USAGE
]


def test_new_account_gets_the_welcome_promo_once(ledger: Ledger) -> None:
    account_id = ledger.account(idempotency_key=uid("signup"))
    row = ledger.account_row(account_id)
    assert (row.paid_paisa, row.promo_paisa) == (0, 5000)
    again, _ = ledger.tx(
        lambda s: ledger_accounts.create_account(
            s, ledger.policy, name="x", email="x@example.com", idempotency_key=row.idempotency_key
        )
    )
    assert again.id == account_id
    assert [t.kind for t in ledger.transactions(account_id)] == ["promo_grant"]
    ledger.assert_consistent(account_id)


def test_charge_takes_promo_first_then_paid(ledger: Ledger) -> None:
    account_id = ledger.account(paid=10_000, promo=500)
    ledger.call(account_id)  # 442 from promo
    row = ledger.account_row(account_id)
    assert (row.promo_paisa, row.paid_paisa) == (58, 10_000)
    ledger.call(account_id)  # 58 from promo, 384 from paid
    row = ledger.account_row(account_id)
    assert (row.promo_paisa, row.paid_paisa) == (0, 10_000 - 384)
    last = ledger.transactions(account_id)[-1]
    assert (last.kind, last.amount_paisa, last.promo_delta_paisa, last.paid_delta_paisa) == (
        "call_charge",
        -442,
        -58,
        -384,
    )
    with ledger.factory() as s:
        rows = s.execute(
            select(CreditLot.kind, LotAllocation.amount_paisa)
            .join(CreditLot, CreditLot.id == LotAllocation.lot_id)
            .where(LotAllocation.transaction_id == last.id)
        ).all()
    by_kind = {kind: amount for kind, amount in rows}
    assert len(rows) == 2
    assert by_kind == {"promo": 58, "paid": 384}
    ledger.assert_consistent(account_id)


def test_authorization_refused_below_min_balance(ledger: Ledger) -> None:
    poor = ledger.account(promo=999)
    decision = ledger.authorize(poor, call_id=(call_id := uid("call")))
    assert not decision.authorized
    assert decision.reason == "insufficient_balance"
    assert decision.hold_paisa == 0
    assert decision.available_paisa == 999
    row = ledger.account_row(poor)
    assert (row.promo_paisa, row.reserved_paisa) == (999, 0)
    with ledger.factory() as s:
        call = s.get(Call, call_id)
        assert call is not None
        assert (call.status, call.outcome, call.total_paisa) == ("finalized", "refused", 0)
    # The same call_id gets the same decision, even after a top-up.
    ledger.top_up(poor, 100_000)
    assert not ledger.authorize(poor, call_id=call_id).authorized
    ledger.assert_consistent(poor)


def test_authorization_replay_with_other_terms_is_a_conflict(ledger: Ledger) -> None:
    account_id = ledger.account(promo=5000)
    other = ledger.account(promo=5000)
    call_id = uid("call")
    first = ledger.authorize(account_id, call_id)
    assert ledger.authorize(account_id, call_id) == first
    with pytest.raises(Conflict):
        ledger.authorize(account_id, call_id, channel="web")
    with pytest.raises(Conflict):
        ledger.authorize(other, call_id)
    assert ledger.active_holds(account_id) == 1 and ledger.active_holds(other) == 0
    unknown = ledger.authorize(uid("nobody"))
    assert (unknown.authorized, unknown.reason) == (False, "account_not_found")


def test_promo_grant_replay_with_other_terms_is_a_conflict(ledger: Ledger) -> None:
    account_id = ledger.account(promo=0)
    key = uid("grant")
    expires = datetime(2031, 1, 1, tzinfo=UTC)

    def grant(amount: int, at: datetime | None) -> Any:
        return ledger.tx(
            lambda s: ledger_accounts.grant_promo(
                s, account_id=account_id, amount_paisa=amount, grant_key=key, expires_at=at
            )
        )

    grant(700, expires)
    grant(700, expires.astimezone(IST))  # the same instant
    for amount, at in ((701, expires), (700, None), (700, expires + timedelta(days=1))):
        with pytest.raises(Conflict):
            grant(amount, at)
    assert ledger.account_row(account_id).promo_paisa == 700
    ledger.assert_consistent(account_id)


def test_authorization_counts_holds_of_calls_in_progress(ledger: Ledger) -> None:
    account_id = ledger.account(promo=1999)
    first = ledger.authorize(account_id)
    assert first.authorized and first.hold_paisa == 1000
    second = ledger.authorize(account_id)
    assert not second.authorized  # 1999 − 1000 reserved < 1000
    exact = ledger.account(promo=1000)
    assert ledger.authorize(exact).authorized  # exactly ₹10 passes
    ledger.assert_consistent(account_id, exact)


def test_api_request_authorization_uses_the_same_rule(ledger: Ledger) -> None:
    account_id = ledger.account(promo=1500)
    ok = ledger.tx(lambda s: api_requests.authorize_api_request(s, account_id=account_id))
    assert ok.authorized
    ledger.authorize(account_id)  # a call reserves 1000
    refused = ledger.tx(lambda s: api_requests.authorize_api_request(s, account_id=account_id))
    assert not refused.authorized and refused.reason == "insufficient_balance"


def test_in_progress_call_may_take_paid_negative_and_a_top_up_settles_it(ledger: Ledger) -> None:
    account_id = ledger.account(promo=1000)
    result = ledger.call(account_id, usage=TEN_CALLS)
    # Rounded once over the summed usage: stt 60 × 0.498 = 4.98, not 10 × 0.50.
    assert result.breakdown.total_paisa == 4417
    row = ledger.account_row(account_id)
    assert (row.promo_paisa, row.paid_paisa, row.reserved_paisa) == (0, -3417, 0)
    ledger.assert_consistent(account_id)
    # Nothing else can push it further down: new calls and refunds are refused.
    assert not ledger.authorize(account_id).authorized
    with pytest.raises(RefundNotAllowed):
        ledger.tx(
            lambda s: refunds.start_refund(
                s, refund_id=uid("r"), account_id=account_id, amount_paisa=None
            )
        )
    # A top-up smaller than the overdraft settles part of it, the next one the rest.
    ledger.top_up(account_id, 1000)
    assert ledger.account_row(account_id).paid_paisa == -2417
    ledger.assert_consistent(account_id)
    ledger.top_up(account_id, 5000)
    assert ledger.account_row(account_id).paid_paisa == 2583
    with ledger.factory() as s:
        lots = s.scalars(
            select(CreditLot).where(CreditLot.account_id == account_id, CreditLot.kind == "paid")
        ).all()
        assert sorted(lot.remaining_paisa for lot in lots) == [0, 2583]
        settled = s.scalars(
            select(LotAllocation.amount_paisa).where(
                LotAllocation.account_id == account_id, LotAllocation.kind == "settlement"
            )
        ).all()
        assert sorted(settled) == [1000, 2417]
    assert ledger.authorize(account_id).authorized
    ledger.assert_consistent(account_id)


def test_api_charge_is_never_refused_and_is_idempotent(ledger: Ledger) -> None:
    account_id = ledger.account(promo=0)
    request_id = uid("req")

    def charge(tokens: int = 24000):
        return ledger.tx(
            lambda s: api_requests.charge_api_usage(
                s,
                request_id=request_id,
                account_id=account_id,
                sku="openai/gpt-4o-mini",
                input_tokens=tokens,
                output_tokens=2000,
            )
        )

    record, balance = charge()
    assert (record.provider_total_paisa, record.margin_paisa, record.total_paisa) == (40, 12, 52)
    assert balance.paid_paisa == -52  # the work is done: charged even below zero
    again, balance2 = charge()
    assert again.transaction_id == record.transaction_id and balance2.paid_paisa == -52
    with pytest.raises(Conflict):
        charge(tokens=1)
    other = ledger.account(promo=0)
    with pytest.raises(Conflict):
        ledger.tx(
            lambda s: api_requests.charge_api_usage(
                s,
                request_id=request_id,
                account_id=other,
                sku="openai/gpt-4o-mini",
                input_tokens=24000,
                output_tokens=2000,
            )
        )
    with pytest.raises(ValidationFailed) as err:
        ledger.tx(
            lambda s: api_requests.charge_api_usage(
                s,
                request_id=uid("req"),
                account_id=account_id,
                sku="nope/model",
                input_tokens=1,
                output_tokens=1,
            )
        )
    assert err.value.code == "unknown_sku"
    assert [t.kind for t in ledger.transactions(account_id)] == ["api_charge"]
    ledger.assert_consistent(account_id, other)


def test_promo_expiry(ledger: Ledger) -> None:
    account_id = ledger.account(paid=2000, promo=0)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    ledger.tx(
        lambda s: ledger_accounts.grant_promo(
            s, account_id=account_id, amount_paisa=1000, grant_key=uid("g"), expires_at=expires
        )
    )
    ledger.call(account_id)  # 442 from the expiring promo lot
    before = ledger.balance(account_id, now=expires - timedelta(seconds=1))
    assert (before.balance.promo_paisa, before.balance.paid_paisa) == (558, 2000)
    after = ledger.balance(account_id, now=expires)
    assert (after.balance.promo_paisa, after.balance.paid_paisa) == (0, 2000)
    expiry = ledger.transactions(account_id)[-1]
    assert (expiry.kind, expiry.amount_paisa, expiry.balance_after) == ("promo_expiry", -558, 2000)
    # Idempotent: looking again posts nothing more.
    ledger.balance(account_id, now=expires + timedelta(days=1))
    assert len(ledger.transactions(account_id)) == 4
    ledger.assert_consistent(account_id)


def test_expired_promo_is_neither_authorized_on_nor_charged(ledger: Ledger) -> None:
    account_id = ledger.account(promo=0)
    expires = datetime.now(UTC) + timedelta(hours=1)
    ledger.tx(
        lambda s: ledger_accounts.grant_promo(
            s, account_id=account_id, amount_paisa=3000, grant_key=uid("g"), expires_at=expires
        )
    )
    later = expires + timedelta(minutes=1)
    assert not ledger.authorize(account_id, now=later).authorized
    # A call authorized before the expiry and charged after it: the expired lot is gone by
    # then, so the charge goes to paid (below zero), not to expired promo.
    account2 = ledger.account(promo=0)
    ledger.tx(
        lambda s: ledger_accounts.grant_promo(
            s, account_id=account2, amount_paisa=3000, grant_key=uid("g"), expires_at=expires
        )
    )
    call_id = uid("call")
    assert ledger.authorize(account2, call_id).authorized
    ledger.finalize(call_id, now=later)
    row = ledger.account_row(account2)
    assert (row.promo_paisa, row.paid_paisa) == (0, -442)
    ledger.assert_consistent(account_id, account2)


def _expired_promo_account(ledger: Ledger, paid: int = 0) -> str:
    """An account holding 700 paisa of promo that expired a minute ago, not yet settled."""
    account_id = ledger.account(paid=paid, promo=0)
    ledger.tx(
        lambda s: ledger_accounts.grant_promo(
            s,
            account_id=account_id,
            amount_paisa=700,
            grant_key=uid("g"),
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
        )
    )
    assert ledger.account_row(account_id).promo_paisa == 700
    return account_id


def test_credits_and_charges_return_the_settled_snapshot(ledger: Ledger) -> None:
    """The snapshot an operation returns is what a balance read would show afterwards: expired
    promo is settled first, so callers need not read the balance again."""
    code = _coupon(ledger)
    operations: dict[str, Callable[..., tuple[object, BalanceSnapshot]]] = {
        "topup": lambda s, a: ledger_accounts.top_up(
            s, account_id=a, amount_paisa=1000, payment_reference=uid("pay")
        ),
        "promo_grant": lambda s, a: ledger_accounts.grant_promo(
            s, account_id=a, amount_paisa=1000, grant_key=uid("g")
        ),
        "coupon": lambda s, a: coupons.redeem_coupon(s, account_id=a, code=code),
        "api_charge": lambda s, a: api_requests.charge_api_usage(
            s,
            request_id=uid("req"),
            account_id=a,
            sku="openai/gpt-4o",
            input_tokens=1000,
            output_tokens=100,
        ),
    }
    promo_after = {"topup": 0, "promo_grant": 1000, "coupon": 2500, "api_charge": 0}
    for kind, operation in operations.items():
        account_id = _expired_promo_account(ledger, paid=5000)
        _, returned = ledger.tx(partial(operation, a=account_id))
        assert returned.promo_paisa == promo_after[kind], kind  # the expired 700 are gone
        assert returned == ledger.balance(account_id).balance, kind
        kinds = [t.kind for t in ledger.transactions(account_id)]
        assert kinds[-2:] == ["promo_expiry", kind], kinds
        ledger.assert_consistent(account_id)


def test_void_outcomes_release_the_hold_and_charge_nothing(ledger: Ledger) -> None:
    account_id = ledger.account(promo=5000)
    for outcome in ("failed", "no_answer", "busy", "rejected"):
        result = ledger.call(account_id, outcome=outcome)
        assert not result.charged and result.breakdown.total_paisa == 0
    for outcome in ("completed", "voicemail", "abandoned"):
        assert ledger.call(account_id, outcome=outcome).breakdown.total_paisa == 442
    row = ledger.account_row(account_id)
    assert (row.promo_paisa, row.reserved_paisa) == (5000 - 3 * 442, 0)
    with ledger.factory() as s:
        statuses = s.scalars(select(Hold.status).where(Hold.account_id == account_id)).all()
    assert sorted(statuses) == ["captured"] * 3 + ["voided"] * 4
    ledger.assert_consistent(account_id)


def test_first_finalization_wins(ledger: Ledger) -> None:
    account_id = ledger.account(promo=5000)
    call_id = uid("call")
    ledger.authorize(account_id, call_id)
    first = ledger.finalize(call_id, outcome="failed")
    second = ledger.finalize(call_id, outcome="completed")
    assert second.outcome == "failed" and not second.charged
    assert ledger.account_row(account_id).promo_paisa == 5000
    with pytest.raises(NotFound):
        ledger.tx(
            lambda s: ledger_calls.finalize_call(s, FinalizeCallRequest(uid("nope"), "completed"))
        )
    assert first.outcome == "failed"
    ledger.assert_consistent(account_id)


def test_finalize_rejects_a_non_final_outcome(ledger: Ledger) -> None:
    account_id = ledger.account(promo=5000)
    call_id = uid("call")
    ledger.authorize(account_id, call_id)
    for outcome in ("refused", "ringing"):
        with pytest.raises(ValidationFailed):
            ledger.tx(partial(_finalize_raw, request=FinalizeCallRequest(call_id, outcome)))
    assert ledger.active_holds(account_id) == 1


def _finalize_raw(session: Session, request: FinalizeCallRequest) -> object:
    return ledger_calls.finalize_call(session, request)


# --- coupons -------------------------------------------------------------------------------


def _coupon(ledger: Ledger, **kw: object) -> str:
    code = kw.pop("code", None) or "Save" + uid("")[1:].upper()
    ledger.tx(lambda s: coupons.create_coupon(s, code=str(code), bonus_paisa=2500, **kw))  # type: ignore[arg-type]
    return str(code)


def test_coupon_is_case_sensitive_and_once_per_account(ledger: Ledger) -> None:
    code = _coupon(ledger)
    account_id = ledger.account(promo=0)
    for wrong in (code.lower(), code.upper(), code + " "):
        with pytest.raises(InvalidCoupon):
            ledger.tx(partial(coupons.preview_coupon, account_id=account_id, code=wrong))
        with pytest.raises(InvalidCoupon):
            ledger.tx(partial(coupons.redeem_coupon, account_id=account_id, code=wrong))
    preview = ledger.tx(lambda s: coupons.preview_coupon(s, account_id=account_id, code=code))
    assert preview.bonus_paisa == 2500
    assert ledger.account_row(account_id).promo_paisa == 0  # preview changes nothing
    _, balance = ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=account_id, code=code))
    assert balance.promo_paisa == 2500 and balance.paid_paisa == 0
    with pytest.raises(InvalidCoupon):
        ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=account_id, code=code))
    assert ledger.account_row(account_id).promo_paisa == 2500
    other = ledger.account(promo=0)
    ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=other, code=code))
    ledger.assert_consistent(account_id, other)


def test_coupon_expiry_and_promo_expiry(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    expired = _coupon(ledger, expires_at=now - timedelta(seconds=1))
    account_id = ledger.account(promo=0)
    with pytest.raises(InvalidCoupon):
        ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=account_id, code=expired))
    promo_end = now + timedelta(days=7)
    code = _coupon(ledger, expires_at=now + timedelta(days=1), promo_expires_at=promo_end)
    ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=account_id, code=code, now=now))
    assert (
        ledger.balance(account_id, now=promo_end - timedelta(seconds=1)).balance.promo_paisa == 2500
    )
    assert ledger.balance(account_id, now=promo_end).balance.promo_paisa == 0
    with pytest.raises(InvalidCoupon):
        ledger.tx(
            lambda s: coupons.redeem_coupon(
                s, account_id=ledger.account(promo=0), code=code, now=now + timedelta(days=2)
            )
        )
    ledger.assert_consistent(account_id)


def test_coupon_max_redemptions(ledger: Ledger) -> None:
    code = _coupon(ledger, max_redemptions=2)
    accounts = [ledger.account(promo=0) for _ in range(3)]
    ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=accounts[0], code=code))
    ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=accounts[1], code=code))
    with pytest.raises(InvalidCoupon):
        ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=accounts[2], code=code))
    with pytest.raises(Conflict):
        ledger.tx(lambda s: coupons.create_coupon(s, code=code, bonus_paisa=1))
    ledger.assert_consistent(*accounts)


# --- refunds -------------------------------------------------------------------------------


def test_refund_debits_paid_only_and_not_what_calls_in_progress_need(ledger: Ledger) -> None:
    """refundable = max(0, min(paid, available − reserved)) (contract §2): promo pays for calls
    first, so a hold eats into paid only past the promo."""
    account_id = ledger.account(paid=3000, promo=500)
    ledger.authorize(account_id)  # reserves 1000: 500 of promo, 500 of paid
    with pytest.raises(RefundNotAllowed):
        ledger.tx(
            lambda s: refunds.start_refund(
                s, refund_id=uid("r"), account_id=account_id, amount_paisa=2501
            )
        )
    refund, balance = ledger.tx(
        lambda s: refunds.start_refund(
            s, refund_id=uid("r"), account_id=account_id, amount_paisa=None
        )
    )
    assert refund.amount_paisa == 2500 and refund.status == "pending"
    assert (balance.paid_paisa, balance.promo_paisa) == (500, 500)  # promo untouched
    debit = ledger.transactions(account_id)[-1]
    assert (debit.kind, debit.amount_paisa, debit.promo_delta_paisa) == ("refund", -2500, 0)
    with pytest.raises(RefundNotAllowed):  # the rest is the call's
        ledger.tx(
            lambda s: refunds.start_refund(
                s, refund_id=uid("r"), account_id=account_id, amount_paisa=None
            )
        )
    done, _ = ledger.tx(
        lambda s: refunds.complete_refund(s, refund_id=refund.id, gateway_reference="gw-1")
    )
    assert done.status == "completed"
    with pytest.raises(Conflict):
        ledger.tx(lambda s: refunds.fail_refund(s, refund_id=refund.id, reason="late"))
    assert ledger.account_row(account_id).paid_paisa == 500
    ledger.assert_consistent(account_id)


def test_failed_refund_puts_the_money_back(ledger: Ledger) -> None:
    account_id = ledger.account(paid=3000, promo=0)
    refund_id = uid("r")
    ledger.tx(
        lambda s: refunds.start_refund(
            s, refund_id=refund_id, account_id=account_id, amount_paisa=1200
        )
    )
    # Starting it again with the same id changes nothing; other terms are a conflict.
    ledger.tx(
        lambda s: refunds.start_refund(
            s, refund_id=refund_id, account_id=account_id, amount_paisa=1200
        )
    )
    with pytest.raises(Conflict):
        ledger.tx(
            lambda s: refunds.start_refund(
                s, refund_id=refund_id, account_id=account_id, amount_paisa=5
            )
        )
    assert ledger.account_row(account_id).paid_paisa == 1800
    for _ in range(2):
        failed, balance = ledger.tx(
            lambda s: refunds.fail_refund(s, refund_id=refund_id, reason="card closed")
        )
        assert failed.status == "failed" and balance.paid_paisa == 3000
    with pytest.raises(Conflict):
        ledger.tx(lambda s: refunds.complete_refund(s, refund_id=refund_id, gateway_reference=None))
    kinds = [(t.kind, t.amount_paisa) for t in ledger.transactions(account_id)]
    assert kinds == [("topup", 3000), ("refund", -1200), ("refund_reversal", 1200)]
    ledger.assert_consistent(account_id)


# --- balances and history -------------------------------------------------------------------


def test_month_usage_is_the_calendar_month_in_kolkata(ledger: Ledger) -> None:
    account_id = ledger.account(paid=10_000, promo=0)
    late = ledger.call(account_id)  # will be 23:59 IST on 30 Nov
    early = ledger.call(account_id)  # will be 00:01 IST on 1 Dec
    ledger.tx(
        lambda s: api_requests.charge_api_usage(
            s,
            request_id=uid("req"),
            account_id=account_id,
            sku="openai/gpt-4o-mini",
            input_tokens=24000,
            output_tokens=2000,
        )
    )
    api_tx = ledger.transactions(account_id)[-1]
    stamps = {
        late.transaction_id: datetime(2026, 11, 30, 23, 59, tzinfo=IST),  # 18:29 UTC
        early.transaction_id: datetime(2026, 12, 1, 0, 1, tzinfo=IST),  # 18:31 UTC, 30 Nov
        api_tx.id: datetime(2026, 12, 31, 23, 59, 59, tzinfo=IST),
    }

    def restamp(s):  # type: ignore[no-untyped-def]
        for tx_id, at in stamps.items():
            s.execute(
                update(LedgerTransaction).where(LedgerTransaction.id == tx_id).values(created_at=at)
            )

    ledger.tx(restamp)
    dec = datetime(2026, 12, 15, tzinfo=IST)
    assert ledger.balance(account_id, now=dec).month_usage_paisa == 442 + 52
    nov = datetime(2026, 11, 30, 23, 59, 30, tzinfo=IST)
    assert ledger.balance(account_id, now=nov).month_usage_paisa == 442
    # 1 Dec 00:00 IST is still 30 Nov in UTC; it is December for the customer.
    assert (
        ledger.balance(account_id, now=datetime(2026, 11, 30, 18, 30, tzinfo=UTC)).month_usage_paisa
        == 442 + 52
    )
    daily = ledger.tx(lambda s: balances.daily_spend_this_month(s, account_id, now=dec))
    assert daily == [("2026-12-01", 442), ("2026-12-31", 52)]


def test_transaction_history_is_signed_and_paginated_newest_first(ledger: Ledger) -> None:
    account_id = ledger.account(paid=0, promo=5000)
    ledger.top_up(account_id, 2000)
    ledger.call(account_id)
    refund_id = uid("r")
    ledger.tx(
        lambda s: refunds.start_refund(
            s, refund_id=refund_id, account_id=account_id, amount_paisa=500
        )
    )
    code = _coupon(ledger)
    ledger.tx(lambda s: coupons.redeem_coupon(s, account_id=account_id, code=code))
    pages: list[list[LedgerTransaction]] = []
    before: int | None = None
    while True:
        page = ledger.tx(
            partial(balances.list_transactions, account_id=account_id, before_id=before, limit=2)
        )
        if not page:
            break
        pages.append(page)
        before = page[-1].id
    assert [len(p) for p in pages] == [2, 2, 1]
    history = [t for p in pages for t in p]
    assert [(t.kind, t.amount_paisa, t.balance_after) for t in history] == [
        ("coupon", 2500, 8558),
        ("refund", -500, 6058),
        ("call_charge", -442, 6558),
        ("topup", 2000, 7000),
        ("promo_grant", 5000, 5000),
    ]
    assert sum(t.amount_paisa for t in history) == ledger.account_row(account_id).promo_paisa + (
        ledger.account_row(account_id).paid_paisa
    )
    with pytest.raises(NotFound):
        ledger.tx(lambda s: balances.list_transactions(s, uid("nope"), before_id=None, limit=5))


# --- holds ----------------------------------------------------------------------------------


def test_stale_hold_expires_after_max_duration_and_grace(ledger: Ledger) -> None:
    account_id = ledger.account(promo=1500)
    start = datetime.now(UTC)
    call_id = uid("call")
    assert ledger.authorize(account_id, call_id, now=start).authorized
    assert not ledger.authorize(account_id, now=start).authorized  # held
    limit = start + ledger.policy.max_call_duration + ledger.policy.hold_grace
    assert (
        ledger.balance(account_id, now=limit - timedelta(seconds=1)).balance.reserved_paisa == 1000
    )
    assert ledger.balance(account_id, now=limit).balance.reserved_paisa == 0
    assert ledger.authorize(account_id, now=limit).authorized  # the lost call no longer pins it
    # The lost call can still be finalized (abandoned): charged, nothing released twice.
    result = ledger.finalize(call_id, outcome="abandoned", now=limit)
    assert result.breakdown.total_paisa == 442
    row = ledger.account_row(account_id)
    assert (row.promo_paisa, row.reserved_paisa) == (1500 - 442, 1000)
    with ledger.factory() as s:
        hold = s.scalars(select(Hold).where(Hold.reference == f"call:{call_id}")).one()
        assert hold.status == "expired"
    ledger.assert_consistent(account_id)


def test_release_stale_holds_sweeps_every_account(isolated_ledger: Ledger) -> None:
    ledger = isolated_ledger
    start = datetime.now(UTC)
    accounts = [ledger.account(promo=5000) for _ in range(3)]
    for account_id in accounts:
        ledger.authorize(account_id, now=start)
        ledger.authorize(account_id, now=start + timedelta(hours=3))
    limit = start + ledger.policy.max_call_duration + ledger.policy.hold_grace
    released = ledger.tx(lambda s: holds.release_stale_holds(s, now=limit))
    assert released == 3000
    assert [ledger.account_row(a).reserved_paisa for a in accounts] == [1000] * 3
    assert ledger.tx(lambda s: holds.release_stale_holds(s, now=limit)) == 0
    ledger.assert_consistent(*accounts)


# --- rate cards -------------------------------------------------------------------------------


def test_a_call_is_priced_on_the_rate_card_it_was_authorized_on(isolated_ledger: Ledger) -> None:
    ledger = isolated_ledger
    account_id = ledger.account(promo=5000)
    v1_call = uid("call")
    assert ledger.authorize(account_id, v1_call).rate_card_version == 1
    doubled = [
        {
            "sku": p.sku,
            "component": p.component,
            "unit": p.unit,
            "price_inr": str(2 * Decimal(p.price_inr)),
        }
        for p in ledger.tx(lambda s: rate_cards.current_rate_card(s)).prices
    ]
    v2 = ledger.tx(lambda s: rate_cards.publish_rate_card(s, prices=doubled))
    assert v2.version == 2
    assert ledger.tx(lambda s: rate_cards.current_rate_card(s)).version == 2
    v2_call = uid("call")
    assert ledger.authorize(account_id, v2_call).rate_card_version == 2
    assert ledger.finalize(v1_call).breakdown.total_paisa == 442
    second = ledger.finalize(v2_call).breakdown
    assert (second.provider_total_paisa, second.total_paisa) == (680, 884)
    # Replaying the authorization of the v1 call still says v1.
    assert ledger.authorize(account_id, v1_call).rate_card_version == 1
    # Publishing with an idempotency key twice gives one version.
    again = [
        ledger.tx(
            lambda s: rate_cards.publish_rate_card(s, prices=doubled, idempotency_key="rc-3")
        ).version
        for _ in range(2)
    ]
    assert again == [3, 3]
    ledger.assert_consistent(account_id)
