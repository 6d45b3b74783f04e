"""Low-balance alerts that cannot be lost: the outbox.

A crossing is decided where the balance moves: `posting.post` (every balance change) and a new
alert threshold call `record_crossing` in their transaction. The rule is
`domain.balance_rules.low_balance_step` on the account row's `low_balance_armed` flag, so one
crossing writes one `alert_outbox` row (dedupe key `low_balance_alert_key(account, version)`)
and a credit back at or above the threshold re-arms. Whoever commits such a change hands the
row to `AccountWorkflow` right after the commit (activities.alerts, api.notify); the alert email
activity marks it delivered; the reconciler hands over again whatever is left undelivered.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Account, AlertOutbox
from domain.balance_rules import low_balance_step
from domain.contracts import low_balance_alert_key
from domain.contracts.accounts import LowBalanceAlert
from ledger.plain_accounts import AccountRow
from ledger.repositories import outbox


def alert_threshold_of(account: AccountRow) -> int:
    """The account's alert threshold: its own, else its minimum balance."""
    if account.alert_threshold_paisa is not None:
        return account.alert_threshold_paisa
    return account.min_balance_paisa


def crossing_step(account: AccountRow) -> tuple[bool, LowBalanceAlert | None]:
    """After a balance or threshold change: whether the alert is armed now, and the crossing
    to record (None: no crossing)."""
    armed = account.low_balance_armed is not False  # None: a row not flushed yet (default on)
    step = low_balance_step(
        armed=armed,
        available_paisa=account.paid_paisa + account.promo_paisa,
        alert_threshold_paisa=alert_threshold_of(account),
    )
    if not step.crossed:
        return step.armed, None
    return step.armed, LowBalanceAlert(
        account_id=account.id,
        dedupe_key=low_balance_alert_key(account.id, account.version),
        crossing_version=account.version,
        available_paisa=account.paid_paisa + account.promo_paisa,
        paid_paisa=account.paid_paisa,
        promo_paisa=account.promo_paisa,
        threshold_paisa=alert_threshold_of(account),
    )


def record_crossing(session: Session, account: Account) -> LowBalanceAlert | None:
    """After a balance or threshold change on the locked `account`: re-arm, or record a
    crossing in the outbox (returned) and disarm."""
    armed, alert = crossing_step(account)
    if armed != account.low_balance_armed:
        account.low_balance_armed = armed
    if alert is not None:
        outbox.insert_alert(session, account.id, alert.dedupe_key, asdict(alert))
    return alert


def _alert(row: AlertOutbox) -> LowBalanceAlert:
    return LowBalanceAlert(**row.payload)


def undelivered_alerts(session: Session, account_id: str) -> list[LowBalanceAlert]:
    """The account's crossings not delivered yet (right after a commit: the one it recorded)."""
    return [_alert(row) for row in outbox.undelivered_of_account(session, account_id)]


def note_handed_over(session: Session, dedupe_keys: list[str], now: datetime) -> None:
    """Count a hand-over to the account workflow (the reconciler waits a while after one)."""
    if dedupe_keys:
        outbox.note_attempt(session, dedupe_keys, now)


def alerts_due(
    session: Session, now: datetime, *, grace: timedelta, limit: int = 200
) -> list[LowBalanceAlert]:
    """For the reconciler: undelivered crossings older than `grace` and not handed over within
    it, claimed for this sweep (counted as a hand-over)."""
    rows = outbox.undelivered_before(session, now - grace, limit)
    note_handed_over(session, [row.dedupe_key for row in rows], now)
    return [_alert(row) for row in rows]


def mark_delivered(session: Session, dedupe_key: str, now: datetime) -> bool:
    return outbox.set_delivered(session, dedupe_key, now)
