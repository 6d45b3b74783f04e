"""Accounts."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.models import Account


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
