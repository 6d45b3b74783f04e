"""Accounts, and what an account needs settled before it is read or changed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.models import Account, CreditLot, Hold


def ping(session: Session) -> None:
    """A round trip to the database (health checks)."""
    session.execute(text("SELECT 1"))


def lock_account(session: Session, account_id: str) -> Account | None:
    return session.scalars(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def get_account(session: Session, account_id: str) -> Account | None:
    return session.get(Account, account_id)


def get_account_by_idempotency_key(session: Session, key: str) -> Account | None:
    return session.scalars(select(Account).where(Account.idempotency_key == key)).one_or_none()


def contact(session: Session, account_id: str) -> tuple[str, str] | None:
    """(name, email) of an account, without loading (or locking) the row."""
    row = session.execute(
        select(Account.name, Account.email).where(Account.id == account_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


def needs_housekeeping(session: Session, account_id: str, now: datetime) -> bool:
    """Is there an expired promo lot or a stale hold to settle? (a plain read, no locks)"""
    expired_lot = (
        select(CreditLot.id)
        .where(
            CreditLot.account_id == account_id,
            CreditLot.kind == "promo",
            CreditLot.remaining_paisa > 0,
            CreditLot.expires_at.is_not(None),
            CreditLot.expires_at <= now,
        )
        .exists()
    )
    stale_hold = (
        select(Hold.id)
        .where(Hold.account_id == account_id, Hold.status == "active", Hold.expires_at <= now)
        .exists()
    )
    return bool(session.scalar(select(expired_lot | stale_hold)))
