"""How a refund is split over the payments the money came from (contract §6), pure.

A refund goes back to the account's captured gateway payments, newest first, each part at most
that payment's unrefunded amount; what no payment covers (paid balance that came without a
gateway payment: admin top-ups, bank transfers) is one payout part to the customer's bank
account. Razorpay refunds and pays out at least ₹1 (`MIN_PART_PAISA`), so no part is smaller:
- a payment with less than ₹1 unrefunded is skipped;
- a part that would leave a remainder under ₹1 is made smaller so exactly ₹1 remains for the
  next part (a payment or the payout), or, when that would make it smaller than ₹1 itself, the
  payment is skipped and the whole remainder goes on;
- so the payout part, when there is one, is ≥ ₹1 whenever the refund is (refunds under ₹1 are
  refused: `MIN_REFUND_PAISA`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

MIN_PART_PAISA = 100  # Razorpay: refunds and payouts of at least ₹1
MIN_REFUND_PAISA = MIN_PART_PAISA


class RefundPartKind(StrEnum):
    GATEWAY = "gateway"  # a Razorpay refund against one captured payment
    PAYOUT = "payout"  # a RazorpayX payout to the customer's bank account


class RefundPartStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"  # for good: its amount was credited back (`refund_reversal`)


@dataclass(frozen=True)
class RefundablePayment:
    payment_id: str
    unrefunded_paisa: int


@dataclass(frozen=True)
class PlannedPart:
    part_no: int  # 1, 2, ... in the order they are sent
    kind: RefundPartKind
    payment_id: str | None  # None for the payout part
    amount_paisa: int


def idempotency_key(*parts: str) -> str:
    """A stable key for one logical operation at the gateway, e.g. one refund part:
    `idempotency_key(refund_id, "part", "2")` (32 hex: within Razorpay's refund and payout key
    rules)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def part_idempotency_key(refund_id: str, part_no: int) -> str:
    return idempotency_key(refund_id, "part", str(part_no))


def plan_parts(amount_paisa: int, payments: Iterable[RefundablePayment]) -> list[PlannedPart]:
    """Split `amount_paisa` over `payments` (newest first); the rest is one payout part."""
    if amount_paisa <= 0:
        raise ValueError(f"a refund of {amount_paisa} paisa has no parts")
    parts: list[PlannedPart] = []
    remaining = amount_paisa
    for payment in payments:
        if remaining == 0:
            break
        take = min(payment.unrefunded_paisa, remaining)
        if 0 < remaining - take < MIN_PART_PAISA:
            take = remaining - MIN_PART_PAISA  # leave exactly ₹1 for the next part
        if take < MIN_PART_PAISA:
            continue
        parts.append(PlannedPart(len(parts) + 1, RefundPartKind.GATEWAY, payment.payment_id, take))
        remaining -= take
    if remaining > 0:
        parts.append(PlannedPart(len(parts) + 1, RefundPartKind.PAYOUT, None, remaining))
    return parts


def refund_outcome(statuses: Sequence[RefundPartStatus]) -> str | None:
    """The refund's status once its parts are settled (None while any is pending): `completed`
    when at least one part was processed (failed parts were credited back: the refund shows
    them), `failed` when every part failed (all the money is back)."""
    if not statuses or RefundPartStatus.PENDING in statuses:
        return None
    if all(status == RefundPartStatus.FAILED for status in statuses):
        return "failed"
    return "completed"
