"""Accounts and their credits: create (with the welcome promo), top up, grant promo, the alert
threshold. Every operation returns the balance snapshot it produced."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from db.models import Account, LedgerTransaction
from domain.balance_rules import MAX_ALERT_THRESHOLD_PAISA
from domain.ledger_types import BalanceSnapshot
from domain.rating import RatingError, validate_margin_rate
from ledger.alerts import record_crossing
from ledger.errors import NotFound, ValidationFailed
from ledger.policy import LedgerPolicy
from ledger.posting import (
    check_amount,
    credit_paid,
    credit_promo,
    housekeeping,
    new_id,
    replay,
    request_hash,
    require_account,
    snapshot,
    utcnow,
)
from ledger.repositories import accounts as account_rows


def get_account(session: Session, account_id: str) -> Account:
    account = account_rows.get_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


def find_account(session: Session, account_id: str) -> Account | None:
    return account_rows.get_account(session, account_id)


def contact(session: Session, account_id: str) -> tuple[str, str] | None:
    """(name, email) for the emails, or None for an unknown account."""
    return account_rows.contact(session, account_id)


def _check_threshold(threshold_paisa: object) -> int | None:
    if threshold_paisa is None:
        return None
    if (
        isinstance(threshold_paisa, bool)
        or not isinstance(threshold_paisa, int)
        or not 0 <= threshold_paisa <= MAX_ALERT_THRESHOLD_PAISA
    ):
        raise ValidationFailed(
            f"alert_threshold_paisa must be an integer from 0 to {MAX_ALERT_THRESHOLD_PAISA}"
        )
    return threshold_paisa


def _check_name(name: object) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > 200:
        raise ValidationFailed("name must be 1 to 200 characters")
    return text


def _check_email(email: object) -> str:
    text = email.strip() if isinstance(email, str) else ""
    if "@" not in text or len(text) > 320 or " " in text:
        raise ValidationFailed("email is not a valid address")
    return text


def _check_margin_rate(margin_rate: object) -> Decimal | None:
    try:
        return validate_margin_rate(margin_rate) if margin_rate is not None else None
    except RatingError as exc:
        raise ValidationFailed(exc.message) from exc


def create_account(
    session: Session,
    policy: LedgerPolicy,
    *,
    name: str,
    email: str,
    margin_rate: object | None = None,
    alert_threshold_paisa: int | None = None,
    idempotency_key: str | None = None,
    account_id: str | None = None,
) -> tuple[Account, BalanceSnapshot]:
    name = _check_name(name)
    email = _check_email(email)
    rate = _check_margin_rate(margin_rate)
    _check_threshold(alert_threshold_paisa)
    if idempotency_key:
        existing = account_rows.get_account_by_idempotency_key(session, idempotency_key)
        if existing is not None:
            return existing, snapshot(existing)
    account = Account(
        id=account_id or new_id("acc"),
        name=name,
        email=email,
        margin_rate=rate,
        min_balance_paisa=policy.min_balance_paisa,
        alert_threshold_paisa=alert_threshold_paisa,
        paid_paisa=0,
        promo_paisa=0,
        reserved_paisa=0,
        version=0,
        idempotency_key=idempotency_key,
    )
    session.add(account)
    session.flush()
    if policy.welcome_promo_paisa > 0:
        credit_promo(
            session,
            account,
            policy.welcome_promo_paisa,
            kind="promo_grant",
            key=f"welcome:{account.id}",
            payload_hash=request_hash({"welcome": policy.welcome_promo_paisa}),
            reference=None,
            description="Welcome bonus",
            expires_at=None,
        )
    return account, snapshot(account)


def top_up(
    session: Session,
    *,
    account_id: str,
    amount_paisa: int,
    payment_reference: str,
    description: str = "Top-up",
    details: dict[str, Any] | None = None,
) -> tuple[LedgerTransaction, BalanceSnapshot]:
    check_amount(amount_paisa)
    if not payment_reference or len(payment_reference) > 200:
        raise ValidationFailed("payment_reference is required")
    key = f"topup:{payment_reference}"
    payload_hash = request_hash({"account_id": account_id, "amount_paisa": amount_paisa})
    account = require_account(session, account_id)
    # Settled first (as a read would), so the snapshot returned holds no expired promo.
    housekeeping(session, account, utcnow())
    existing = replay(session, key, payload_hash)
    if existing is not None:
        return existing, snapshot(account)
    transaction = credit_paid(
        session,
        account,
        amount_paisa,
        kind="topup",
        key=key,
        payload_hash=payload_hash,
        contra_book="cash",
        reference=payment_reference,
        description=description,
        details=details,
    )
    return transaction, snapshot(account)


def grant_promo(
    session: Session,
    *,
    account_id: str,
    amount_paisa: int,
    grant_key: str,
    expires_at: datetime | None = None,
    description: str = "Promo credit",
) -> tuple[LedgerTransaction, BalanceSnapshot]:
    check_amount(amount_paisa)
    key = f"promo:{grant_key}"
    payload: dict[str, Any] = {"account_id": account_id, "amount_paisa": amount_paisa}
    if expires_at is not None:  # (kept out when None: hashes of earlier grants stay valid)
        payload["expires_at"] = expires_at.astimezone(UTC).isoformat()
    payload_hash = request_hash(payload)
    account = require_account(session, account_id)
    housekeeping(session, account, utcnow())
    existing = replay(session, key, payload_hash)
    if existing is not None:
        return existing, snapshot(account)
    transaction = credit_promo(
        session,
        account,
        amount_paisa,
        kind="promo_grant",
        key=key,
        payload_hash=payload_hash,
        reference=grant_key,
        description=description,
        expires_at=expires_at,
    )
    return transaction, snapshot(account)


# What `update_account` may change; the API decides which of them a role may send.
ACCOUNT_SETTINGS = ("name", "email", "margin_rate", "alert_threshold_paisa")


def update_account(
    session: Session, account_id: str, changes: Mapping[str, object]
) -> tuple[Account, BalanceSnapshot]:
    """Change an account's settings (fields absent from `changes` stay). `alert_threshold_paisa`
    None alerts at the minimum balance again, `margin_rate` None is the default margin. A new
    threshold takes effect at once for the next crossing (ledger.alerts.record_crossing, in
    this transaction): lowered to or below the balance it re-arms the alert; raised above the
    balance while armed, that is the crossing (one alert, then none until re-armed)."""
    unknown = sorted(set(changes) - set(ACCOUNT_SETTINGS))
    if unknown:
        raise ValidationFailed(f"unknown account fields: {', '.join(unknown)}")
    checked: dict[str, object] = {}
    if "name" in changes:
        checked["name"] = _check_name(changes["name"])
    if "email" in changes:
        checked["email"] = _check_email(changes["email"])
    if "margin_rate" in changes:
        checked["margin_rate"] = _check_margin_rate(changes["margin_rate"])
    if "alert_threshold_paisa" in changes:
        checked["alert_threshold_paisa"] = _check_threshold(changes["alert_threshold_paisa"])
    account = require_account(session, account_id)
    for name, value in checked.items():
        setattr(account, name, value)
    if "alert_threshold_paisa" in checked:
        # A new account version: a crossing caused by a threshold change gets its own alert key
        # even when the balance has not moved since the previous crossing.
        account.version += 1
        record_crossing(session, account)
    session.flush()
    return account, snapshot(account)


def set_alert_threshold(
    session: Session, account_id: str, threshold_paisa: int | None
) -> tuple[Account, BalanceSnapshot]:
    """None: alert at the minimum balance."""
    return update_account(session, account_id, {"alert_threshold_paisa": threshold_paisa})
