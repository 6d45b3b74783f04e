"""Accounts and their credits: create (with the welcome promo), top up, grant promo, the alert
threshold. Every operation returns the balance snapshot it produced."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Account, LedgerTransaction
from domain.ledger_types import BalanceSnapshot
from domain.rating import RatingError, validate_margin_rate
from ledger.alerts import record_crossing
from ledger.errors import NotFound, ValidationFailed
from ledger.policy import LedgerPolicy
from ledger.posting import (
    MAX_AMOUNT_PAISA,
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


def _check_threshold(threshold_paisa: int | None) -> None:
    if threshold_paisa is not None and not (0 <= threshold_paisa <= MAX_AMOUNT_PAISA):
        raise ValidationFailed("alert_threshold_paisa is out of range")


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
    name = name.strip()
    email = email.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name must be 1 to 200 characters")
    if "@" not in email or len(email) > 320 or " " in email:
        raise ValidationFailed("email is not a valid address")
    try:
        rate = validate_margin_rate(margin_rate) if margin_rate is not None else None
    except RatingError as exc:
        raise ValidationFailed(exc.message) from exc
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


def set_alert_threshold(
    session: Session, account_id: str, threshold_paisa: int | None
) -> tuple[Account, BalanceSnapshot]:
    """None: alert at the minimum balance."""
    _check_threshold(threshold_paisa)
    account = require_account(session, account_id)
    account.alert_threshold_paisa = threshold_paisa
    # A threshold raised above the balance is a crossing too (alerted once); lowered below it
    # re-arms.
    record_crossing(session, account)
    return account, snapshot(account)
