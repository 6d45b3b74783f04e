"""The pure money rules of a prepaid balance (contract §2), in paisa. Stdlib only: the ledger,
the API, the dashboard and the workflows call these instead of restating them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def spendable_paisa(available_paisa: int, reserved_paisa: int) -> int:
    """What new work may still use: paid + promo less the holds of calls in progress."""
    return available_paisa - reserved_paisa


def is_refused(*, available_paisa: int, reserved_paisa: int, min_balance_paisa: int) -> bool:
    """The refusal rule: a new call or osmAPI request is refused when
    available − reserved < minimum balance."""
    return spendable_paisa(available_paisa, reserved_paisa) < min_balance_paisa


def hold_paisa(*, call_hold_paisa: int | None, min_balance_paisa: int) -> int:
    """The credit an authorized call holds while it runs: the configured call hold, or (unset)
    the account's minimum balance."""
    return call_hold_paisa or min_balance_paisa


def running_hold_paisa(
    *, authorized_hold_paisa: int, running_total_paisa: int, min_balance_paisa: int
) -> int:
    """A running call's hold (contract §2): its cost so far (priced with its pinned card, margin
    included) plus the minimum balance, never below the hold it was authorized with."""
    return max(authorized_hold_paisa, running_total_paisa + min_balance_paisa)


def refundable_paisa(*, paid_paisa: int, promo_paisa: int, reserved_paisa: int) -> int:
    """Paid money no call in progress has a claim on: max(0, min(paid, available − reserved)).
    Promo credit is never refunded, but it pays for calls first, so holds eat into paid only
    past the promo."""
    available = paid_paisa + promo_paisa
    return max(0, min(paid_paisa, spendable_paisa(available, reserved_paisa)))


# The highest low-balance alert threshold an account may set: ₹10,00,000.
MAX_ALERT_THRESHOLD_PAISA = 10_00_000_00


def below_alert_threshold(*, available_paisa: int, alert_threshold_paisa: int) -> bool:
    """The low-balance condition the alert email is about."""
    return available_paisa < alert_threshold_paisa


@dataclass(frozen=True)
class AlertStep:
    """What one balance snapshot does to the low-balance alert."""

    armed: bool  # armed after this snapshot
    crossed: bool  # this snapshot is a crossing: send one alert


def low_balance_step(*, armed: bool, available_paisa: int, alert_threshold_paisa: int) -> AlertStep:
    """Crossing detection: armed while at or above the threshold; the first snapshot below it
    while armed is a crossing (alert once, disarm); back at or above the threshold re-arms."""
    if not below_alert_threshold(
        available_paisa=available_paisa, alert_threshold_paisa=alert_threshold_paisa
    ):
        return AlertStep(armed=True, crossed=False)
    return AlertStep(armed=False, crossed=armed)


@dataclass(frozen=True)
class DebitPlan:
    """How a debit is paid for (contract §2: promo first, then paid, oldest lot first)."""

    takes: list[tuple[int, int]]  # (lot id, paisa taken from it), in order
    promo_paisa: int  # the part paid from promo lots
    paid_paisa: int  # the rest, from paid lots and overdraft
    overdraft_paisa: int  # the part no lot covers (paid goes below zero)


def plan_debit(
    amount_paisa: int,
    promo_lots: Iterable[tuple[int, int]],
    paid_lots: Iterable[tuple[int, int]],
    *,
    promo_allowed: bool = True,
) -> DebitPlan:
    """Which lots pay `amount_paisa`: `promo_lots` and `paid_lots` are (lot id, remaining)
    oldest first; what no lot covers is overdraft."""
    takes: list[tuple[int, int]] = []
    left = amount_paisa
    promo = 0
    for lots, is_promo in ((promo_lots if promo_allowed else (), True), (paid_lots, False)):
        for lot_id, remaining in lots:
            if left == 0:
                break
            take = min(remaining, left)
            if take <= 0:
                continue
            takes.append((lot_id, take))
            left -= take
            if is_promo:
                promo += take
    return DebitPlan(takes, promo, amount_paisa - promo, left)
