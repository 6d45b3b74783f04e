"""The pure money rules of a prepaid balance (contract §2), in paisa. Stdlib only: the ledger,
the API, the dashboard and the workflows call these instead of restating them."""

from __future__ import annotations

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
