"""The pure rules of money coming in (contract §6): checkout bounds, whether a captured payment
matches its order, and when auto-recharge charges. Stdlib only."""

from __future__ import annotations

from domain.balance_rules import AlertStep, low_balance_step, spendable_paisa
from domain.contracts import PaymentDisposition

CURRENCY = "INR"
AUTO_RECHARGE_MAX_FAILURES = 3  # failures in a row that switch auto-recharge off
AUTO_RECHARGE_WINDOW_SECONDS = 30 * 60  # an auto-recharge not paid by then counts as failed
# Events that mean "this payment is captured": both arrive for one payment, and either credits.
CAPTURE_EVENTS = frozenset({"payment.captured", "order.paid"})
FAILURE_EVENTS = frozenset({"payment.failed"})
REFUND_EVENTS = frozenset({"refund.processed", "refund.failed"})


def checkout_amount_problem(amount_paisa: int, *, min_paisa: int, max_paisa: int) -> str | None:
    """Why `amount_paisa` cannot be bought in one checkout, or None."""
    if isinstance(amount_paisa, bool) or not isinstance(amount_paisa, int):
        return "amount_paisa must be an integer number of paisa"
    if not min_paisa <= amount_paisa <= max_paisa:
        return f"amount_paisa must be between {min_paisa} and {max_paisa} paisa"
    return None


def payment_mismatch(
    *, order_amount_paisa: int, order_currency: str, paid_amount_paisa: int, paid_currency: str
) -> PaymentDisposition | None:
    """A captured payment credits its checkout only if it is exactly what was ordered."""
    if paid_currency != order_currency:
        return PaymentDisposition.CURRENCY_MISMATCH
    if paid_amount_paisa != order_amount_paisa:
        return PaymentDisposition.AMOUNT_MISMATCH
    return None


def auto_recharge_step(
    *, armed: bool, available_paisa: int, reserved_paisa: int, threshold_paisa: int
) -> AlertStep:
    """One recurring charge per crossing: armed while `available − reserved` is at or above the
    threshold; the first balance below it while armed is a crossing (the same rule as the
    low-balance alert, on what new work may still spend)."""
    return low_balance_step(
        armed=armed,
        available_paisa=spendable_paisa(available_paisa, reserved_paisa),
        alert_threshold_paisa=threshold_paisa,
    )
