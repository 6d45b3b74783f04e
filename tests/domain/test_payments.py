"""domain.payments: checkout bounds, payment ↔ order matching, the auto-recharge crossing."""

from __future__ import annotations

import pytest

from domain.contracts import PaymentDisposition, checkout_workflow_id
from domain.payments import auto_recharge_step, checkout_amount_problem, payment_mismatch


@pytest.mark.parametrize(
    ("amount", "ok"),
    [
        (10_000, True),
        (50_000_000, True),
        (9_999, False),
        (50_000_001, False),
        (0, False),
        (-10_000, False),
        (True, False),
        (100_000.0, False),
    ],
)
def test_checkout_bounds(amount: object, ok: bool) -> None:
    problem = checkout_amount_problem(amount, min_paisa=10_000, max_paisa=50_000_000)  # type: ignore[arg-type]
    assert (problem is None) is ok


def test_a_payment_matches_its_order_exactly() -> None:
    def check(amount: int, currency: str) -> PaymentDisposition | None:
        return payment_mismatch(
            order_amount_paisa=100_000,
            order_currency="INR",
            paid_amount_paisa=amount,
            paid_currency=currency,
        )

    assert check(100_000, "INR") is None
    assert check(99_999, "INR") == PaymentDisposition.AMOUNT_MISMATCH
    assert check(100_001, "INR") == PaymentDisposition.AMOUNT_MISMATCH
    assert check(100_000, "USD") == PaymentDisposition.CURRENCY_MISMATCH


def test_one_crossing_until_back_above_the_threshold() -> None:
    armed = True
    crossings = 0
    # available, reserved: the rule is on available − reserved.
    for available, reserved in [(120, 0), (100, 10), (95, 0), (80, 0), (150, 0), (120, 40)]:
        step = auto_recharge_step(
            armed=armed, available_paisa=available, reserved_paisa=reserved, threshold_paisa=100
        )
        armed = step.armed
        crossings += step.crossed
    assert crossings == 2  # (100, 10) and (120, 40); (95, 0) and (80, 0) are the same crossing


def test_checkout_workflow_id() -> None:
    assert checkout_workflow_id("order_Abc") == "checkout-order_Abc"
