"""`AccountWorkflow`'s shapes: its input (and the state it carries across continue-as-new), the
`status` query, and the low-balance alert: the outbox row the signal `low_balance` carries and
the email activity's input. (Its legacy signal `balance_changed` carries a
`domain.ledger_types.BalanceSnapshot`.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts import ACCOUNT_SIGNALS_PER_RUN


@dataclass(frozen=True)
class LowBalanceAlert:
    """One crossing below the alert threshold, recorded by the ledger with the debit that caused
    it (the outbox row; `dedupe_key` = `low_balance_alert_key(account_id, crossing_version)`):
    the `low_balance` signal's payload and the email activity's input."""

    account_id: str
    dedupe_key: str
    crossing_version: int
    available_paisa: int
    paid_paisa: int
    promo_paisa: int
    threshold_paisa: int


@dataclass
class AccountState:
    last_version: int = -1
    paid_paisa: int = 0
    promo_paisa: int = 0
    reserved_paisa: int = 0
    available_paisa: int | None = None
    threshold_paisa: int | None = None
    armed: bool = True
    crossings: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    stale_ignored: int = 0
    pending_alert: LowBalanceAlert | None = None  # legacy: crossings seen in snapshots
    sent_alert_keys: list[str] = field(default_factory=list)  # the last few, for status
    queued_alerts: list[LowBalanceAlert] = field(default_factory=list)  # from the outbox, in order
    duplicate_alerts: int = 0  # outbox rows handed over again while queued or just sent


@dataclass
class AccountWorkflowInput:
    account_id: str
    state: AccountState | None = None  # carried by continue-as-new
    continue_as_new_after_signals: int = ACCOUNT_SIGNALS_PER_RUN


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    state: AccountState
    signals_this_run: int
