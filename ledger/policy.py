"""The knobs the ledger operations take from settings, and the one place they are built."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.config import Settings


@dataclass(frozen=True)
class LedgerPolicy:
    """Passed into the operations so they read no settings themselves."""

    min_balance_paisa: int = 1000
    welcome_promo_paisa: int = 5000
    call_hold_paisa: int | None = None  # unset: the account's minimum balance
    max_call_duration: timedelta = timedelta(hours=4)
    hold_grace: timedelta = timedelta(minutes=15)
    late_usage_window: timedelta = timedelta(minutes=15)  # after hangup (contract §3)


def policy_from_settings(settings: Settings) -> LedgerPolicy:
    return LedgerPolicy(
        min_balance_paisa=settings.min_balance_paisa,
        welcome_promo_paisa=settings.welcome_promo_paisa,
        call_hold_paisa=settings.call_hold_paisa,
        max_call_duration=timedelta(seconds=settings.max_call_duration_seconds),
        hold_grace=timedelta(seconds=settings.hold_grace_seconds),
        late_usage_window=timedelta(seconds=settings.late_usage_window_seconds),
    )
