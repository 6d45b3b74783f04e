"""How a refund splits over the payments it goes back to (domain.refund_parts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.refund_parts import (
    MIN_PART_PAISA,
    RefundablePayment,
    RefundPartKind,
    RefundPartStatus,
    part_idempotency_key,
    plan_parts,
    refund_outcome,
)


def split(amount: int, *unrefunded: int) -> list[tuple[str, str | None, int]]:
    payments = [RefundablePayment(f"pay_{i}", left) for i, left in enumerate(unrefunded)]
    return [(p.kind.value, p.payment_id, p.amount_paisa) for p in plan_parts(amount, payments)]


def test_newest_first_each_at_most_its_unrefunded_amount_then_a_payout() -> None:
    assert split(55_000, 30_000, 10_000) == [
        ("gateway", "pay_0", 30_000),
        ("gateway", "pay_1", 10_000),
        ("payout", None, 15_000),
    ]
    assert split(20_000, 30_000, 10_000) == [("gateway", "pay_0", 20_000)]
    assert split(5_000) == [("payout", None, 5_000)]  # admin top-ups only


def test_no_part_is_below_one_rupee() -> None:
    # ₹300.50 over a ₹300 payment: ₹299.50 to it, ₹1 left for the payout.
    assert split(30_050, 30_000) == [("gateway", "pay_0", 29_950), ("payout", None, 100)]
    # A payment with under ₹1 left is skipped.
    assert split(10_000, 99, 20_000) == [("gateway", "pay_1", 10_000)]
    # Leaving ₹1 would make this part smaller than ₹1: the whole remainder goes on.
    assert split(150, 100) == [("payout", None, 150)]
    assert split(150, 100, 500) == [("gateway", "pay_1", 150)]


@given(
    st.integers(MIN_PART_PAISA, 10_000_000),
    st.lists(st.integers(0, 5_000_000), max_size=6),
)
def test_parts_add_up_and_respect_every_limit(amount: int, unrefunded: list[int]) -> None:
    payments = [RefundablePayment(f"pay_{i}", left) for i, left in enumerate(unrefunded)]
    parts = plan_parts(amount, payments)
    assert sum(p.amount_paisa for p in parts) == amount
    assert all(p.amount_paisa >= MIN_PART_PAISA for p in parts)
    assert [p.part_no for p in parts] == list(range(1, len(parts) + 1))
    limits = {p.payment_id: p.unrefunded_paisa for p in payments}
    gateway = [p for p in parts if p.kind == RefundPartKind.GATEWAY]
    assert all(p.payment_id and p.amount_paisa <= limits[p.payment_id] for p in gateway)
    assert len({p.payment_id for p in gateway}) == len(gateway)
    assert [p.kind for p in parts].count(RefundPartKind.PAYOUT) <= 1
    assert parts[-1].kind == RefundPartKind.PAYOUT or all(p in gateway for p in parts)


def test_nothing_to_split_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        plan_parts(0, [])


def test_outcome_of_the_parts() -> None:
    done, failed, pending = (
        RefundPartStatus.PROCESSED,
        RefundPartStatus.FAILED,
        RefundPartStatus.PENDING,
    )
    assert refund_outcome([done, done]) == "completed"
    assert refund_outcome([failed, done]) == "completed"  # the failed part was credited back
    assert refund_outcome([failed, failed]) == "failed"
    assert refund_outcome([done, pending]) is None
    assert refund_outcome([]) is None


def test_part_keys_are_stable_distinct_and_fit_razorpay() -> None:
    key = part_idempotency_key("ref_1", 1)
    assert key == part_idempotency_key("ref_1", 1) != part_idempotency_key("ref_1", 2)
    assert len(key) == 32 and key.isalnum()
