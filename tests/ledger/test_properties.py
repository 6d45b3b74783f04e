"""Property tests: random sequences of ledger operations on one account (real PostgreSQL),
checked step by step against a small independent model (promo lots first, holds, overdraft)
and at the end by `ledger.invariants.check_ledger`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Hold, LedgerTransaction
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import FinalizeCallRequest
from domain.rating import UsageTotals, validate_usage_event
from domain.refund_parts import MIN_REFUND_PAISA
from ledger import accounts as ledger_accounts
from ledger import api_requests, coupons, rate_cards, refunds
from ledger import calls as ledger_calls
from ledger.errors import InvalidCoupon, RefundNotAllowed
from ledger.policy import LedgerPolicy
from tests.ledger.conftest import Ledger, uid

MIN_BALANCE = 1000
CHARGED = {"completed", "voicemail", "abandoned"}


@dataclass
class Lot:
    remaining: int
    expires_at: datetime | None


@dataclass
class Model:
    """What the ledger should hold, computed without the database."""

    paid: int = 0
    promo_lots: list[Lot] = field(default_factory=list)
    holds: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # active holds
    calls: dict[str, str] = field(default_factory=dict)  # call_id -> status
    charged_calls: dict[str, int] = field(default_factory=dict)  # call_id -> total
    refunds: dict[str, int] = field(default_factory=dict)  # pending refund -> amount
    coupon_used: bool = False

    @property
    def promo(self) -> int:
        return sum(lot.remaining for lot in self.promo_lots)

    @property
    def reserved(self) -> int:
        return sum(amount for amount, _ in self.holds.values())

    def housekeeping(self, now: datetime) -> None:
        for lot in self.promo_lots:
            if lot.expires_at is not None and lot.expires_at <= now:
                lot.remaining = 0
        for call_id, (_, expires_at) in list(self.holds.items()):
            if expires_at <= now:
                del self.holds[call_id]

    def debit(self, amount: int) -> None:
        for lot in self.promo_lots:
            take = min(lot.remaining, amount)
            lot.remaining -= take
            amount -= take
        self.paid -= amount


operations = st.one_of(
    st.tuples(st.just("topup"), st.integers(1, 20_000)),
    st.tuples(st.just("topup"), st.integers(1000, 5_000)),
    st.tuples(st.just("authorize"), st.just("phone")),
    st.tuples(st.just("promo"), st.integers(1, 5_000), st.sampled_from([None, 30, 90, 300])),
    st.tuples(st.just("authorize"), st.sampled_from(["phone", "web", "chat"])),
    st.tuples(
        st.just("finalize"),
        st.integers(0, 50),
        st.sampled_from(["completed", "voicemail", "abandoned", "failed", "no_answer", "busy"]),
        st.integers(0, 12),
    ),
    st.tuples(st.just("api"), st.integers(0, 200_000)),
    st.tuples(st.just("refund"), st.one_of(st.none(), st.integers(1, 30_000))),
    st.tuples(st.just("settle_refund"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("advance"), st.integers(1, 300)),
    st.tuples(st.just("coupon")),
    st.tuples(st.just("repeat")),
)


def _usage(channel: str, repeats: int) -> list[dict[str, object]]:
    events = [e for e in TYPICAL_PHONE_CALL_USAGE if channel == "phone" or e["component"] != "sip"]
    if channel == "chat":
        events = [e for e in events if e["component"] == "llm"]
    return [{**e, "event_id": f"{e['event_id']}-{i}"} for i in range(repeats) for e in events]


class Runner:
    def __init__(self, ledger: Ledger, coupon: str, initial_promo: int) -> None:
        self.ledger = ledger
        self.coupon = coupon
        self.now = datetime.now(UTC)
        self.account_id = ledger.account(promo=initial_promo)
        self.model = Model(promo_lots=[Lot(initial_promo, None)] if initial_promo else [])
        self.channels: dict[str, str] = {}
        self.last: tuple[Any, ...] | None = None

    # Each step returns a replayable operation (a tuple), runs it, updates the model.
    def step(self, op: tuple[Any, ...]) -> None:
        if op[0] == "repeat":
            if self.last is None:
                return
            self.replay(self.last)
            return
        concrete = self.concretize(op)
        if concrete is None:
            return
        self.apply(concrete, first=True)
        self.last = concrete

    def concretize(self, op: tuple[Any, ...]) -> tuple[Any, ...] | None:
        kind = op[0]
        if kind == "topup":
            return ("topup", uid("pay"), op[1])
        if kind == "promo":
            expires = self.now + timedelta(minutes=op[2]) if op[2] else None
            return ("promo", uid("grant"), op[1], expires)
        if kind == "authorize":
            return ("authorize", uid("call"), op[1], self.now)
        if kind == "finalize":
            active = [c for c, status in self.model.calls.items() if status == "active"]
            if not active:
                return None
            return ("finalize", active[op[1] % len(active)], op[2], op[3], self.now)
        if kind == "api":
            return ("api", uid("req"), op[1], self.now)
        if kind == "refund":
            return ("refund", uid("refund"), op[1])
        if kind == "settle_refund":
            pending = list(self.model.refunds)
            if not pending:
                return None
            return ("settle_refund", pending[op[1] % len(pending)], op[2])
        if kind == "advance":
            self.now += timedelta(minutes=op[1])
            self.ledger.balance(self.account_id, now=self.now)
            self.model.housekeeping(self.now)
            self.compare()
            return None
        if kind == "coupon":
            return ("coupon",)
        raise AssertionError(kind)

    def replay(self, op: tuple[Any, ...]) -> None:
        """The same operation with the same key: nothing may change."""
        before = self.state()
        self.apply(op, first=False)
        assert self.state() == before, op

    def state(self) -> tuple[int, ...]:
        row = self.ledger.account_row(self.account_id)
        count = len(self.ledger.transactions(self.account_id))
        return (row.paid_paisa, row.promo_paisa, row.reserved_paisa, count)

    def apply(self, op: tuple[Any, ...], *, first: bool) -> None:
        ledger, account_id, model = self.ledger, self.account_id, self.model
        kind = op[0]
        if kind == "topup":
            _, ref, amount = op
            ledger.top_up(account_id, amount, reference=ref)
            if first:
                model.paid += amount
        elif kind == "promo":
            _, key, amount, expires = op
            ledger.tx(
                lambda s: ledger_accounts.grant_promo(
                    s, account_id=account_id, amount_paisa=amount, grant_key=key, expires_at=expires
                )
            )
            if first:
                model.promo_lots.append(Lot(amount, expires))
        elif kind == "authorize":
            _, call_id, channel, now = op
            if first:
                model.housekeeping(now)
                expect = model.paid + model.promo - model.reserved >= MIN_BALANCE
            decision = ledger.authorize(account_id, call_id, channel=channel, now=now)
            if first:
                assert decision.authorized == expect, (decision, model)
                self.channels[call_id] = channel
                if expect:
                    model.calls[call_id] = "active"
                    model.holds[call_id] = (
                        MIN_BALANCE,
                        now + ledger.policy.max_call_duration + ledger.policy.hold_grace,
                    )
        elif kind == "finalize":
            _, call_id, outcome, repeats, now = op
            channel = self.channels[call_id]
            card = ledger.tx(lambda s: rate_cards.current_rate_card(s))
            totals = UsageTotals()
            for raw in _usage(channel, repeats):
                totals.add(validate_usage_event(raw, channel, card))
            request = FinalizeCallRequest(call_id, outcome, usage=totals.lines)
            result = ledger.tx(lambda s: ledger_calls.finalize_call(s, request, now=now))
            if first:
                model.housekeeping(now)
                model.holds.pop(call_id, None)
                model.calls[call_id] = "finalized"
                if outcome in CHARGED:
                    assert result.breakdown.total_paisa >= 0
                    if result.breakdown.total_paisa:
                        model.charged_calls[call_id] = result.breakdown.total_paisa
                    model.debit(result.breakdown.total_paisa)
                else:
                    assert not result.charged and result.breakdown.total_paisa == 0
        elif kind == "api":
            _, request_id, tokens, now = op
            record, _ = ledger.tx(
                lambda s: api_requests.charge_api_usage(
                    s,
                    request_id=request_id,
                    account_id=account_id,
                    sku="openai/gpt-4o",
                    input_tokens=tokens,
                    output_tokens=tokens // 10,
                    now=now,
                )
            )
            if first:
                model.housekeeping(now)
                model.debit(record.total_paisa)
        elif kind == "refund":
            _, refund_id, amount = op
            refundable = max(0, min(model.paid, model.paid + model.promo - model.reserved))
            wanted = refundable if amount is None else amount
            try:
                refund, _ = ledger.tx(
                    lambda s: refunds.start_refund(
                        s, refund_id=refund_id, account_id=account_id, amount_paisa=amount
                    )
                )
            except RefundNotAllowed:
                if first:
                    # Nothing to refund, more than is refundable, or below the gateway's ₹1.
                    assert wanted < MIN_REFUND_PAISA or wanted > refundable, (wanted, refundable)
                return
            if first:
                assert MIN_REFUND_PAISA <= wanted <= refundable and refund.amount_paisa == wanted
                model.paid -= wanted
                model.refunds[refund_id] = wanted
        elif kind == "settle_refund":
            _, refund_id, succeed = op
            if succeed:
                ledger.tx(
                    lambda s: refunds.complete_refund(s, refund_id=refund_id, gateway_reference="g")
                )
            else:
                ledger.tx(lambda s: refunds.fail_refund(s, refund_id=refund_id, reason="declined"))
            if first:
                amount = model.refunds.pop(refund_id)
                if not succeed:
                    model.paid += amount
        elif kind == "coupon":
            try:
                ledger.tx(
                    lambda s: coupons.redeem_coupon(
                        s, account_id=account_id, code=self.coupon, now=self.now
                    )
                )
                assert not model.coupon_used
                model.coupon_used = True
                model.promo_lots.append(Lot(777, None))
            except InvalidCoupon:
                assert model.coupon_used
        if first:
            self.compare()

    def compare(self) -> None:
        row = self.ledger.account_row(self.account_id)
        model = self.model
        assert (row.paid_paisa, row.promo_paisa, row.reserved_paisa) == (
            model.paid,
            model.promo,
            model.reserved,
        ), model
        assert row.promo_paisa >= 0

    def final_checks(self) -> None:
        ledger, account_id = self.ledger, self.account_id
        ledger.assert_consistent(account_id)
        transactions = ledger.transactions(account_id)
        row = ledger.account_row(account_id)
        # Σ transactions (= Σ journal entries of the customer books) is the balance.
        assert sum(t.amount_paisa for t in transactions) == row.paid_paisa + row.promo_paisa
        charges: dict[str, list[LedgerTransaction]] = {}
        for t in transactions:
            if t.kind == "call_charge":
                assert t.reference is not None
                charges.setdefault(t.reference, []).append(t)
        with ledger.factory() as s:
            holds = {
                h.reference: h.status
                for h in s.scalars(select(Hold).where(Hold.account_id == account_id))
            }
        for call_id, status in self.model.calls.items():
            hold = holds[f"call:{call_id}"]
            if status == "active":
                assert hold in ("active", "expired")
                assert call_id not in charges
            elif call_id in self.model.charged_calls:
                # exactly one capture: one charge transaction of the call's total
                assert [t.amount_paisa for t in charges[call_id]] == [
                    -self.model.charged_calls[call_id]
                ]
                assert hold in ("captured", "expired")
            else:
                assert call_id not in charges  # a void (or a zero charge) posts nothing
                assert hold in ("voided", "captured", "expired")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(initial_promo=st.sampled_from([0, 999, 1000, 5000]), ops=st.lists(operations, max_size=18))
def test_random_operation_sequences_keep_the_books(
    session_factory: sessionmaker[Session],
    property_coupon: str,
    initial_promo: int,
    ops: list[tuple[Any, ...]],
) -> None:
    runner = Runner(Ledger(session_factory, LedgerPolicy()), property_coupon, initial_promo)
    for op in ops:
        runner.step(op)
    runner.final_checks()
