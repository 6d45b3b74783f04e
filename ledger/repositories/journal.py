"""Ledger transactions, credit lots and their allocations, and what an account needs settled
(expired promo, stale holds) before it is read or changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db.models import CreditLot, Hold, LedgerTransaction, LotAllocation
from ledger.repositories.holds import stale_hold_filter

CHARGE_KINDS = ("call_charge", "call_adjustment", "api_charge")


def transaction_by_key(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).one_or_none()


def open_lots(session: Session, account_id: str, kind: str) -> Sequence[CreditLot]:
    """Lots with credit left, oldest first, locked (the account row is already locked)."""
    return session.scalars(
        select(CreditLot)
        .where(
            CreditLot.account_id == account_id,
            CreditLot.kind == kind,
            CreditLot.remaining_paisa > 0,
        )
        .order_by(CreditLot.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def _expired_promo(account_id: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        CreditLot.account_id == account_id,
        CreditLot.kind == "promo",
        CreditLot.remaining_paisa > 0,
        CreditLot.expires_at.is_not(None),
        CreditLot.expires_at <= now,
    )


def expired_promo_lots(session: Session, account_id: str, now: datetime) -> Sequence[CreditLot]:
    return session.scalars(
        select(CreditLot)
        .where(*_expired_promo(account_id, now))
        .order_by(CreditLot.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def needs_housekeeping(session: Session, account_id: str, now: datetime) -> bool:
    """Is there an expired promo lot or a stale hold to settle? (a plain read, no locks)"""
    expired_lot = select(CreditLot.id).where(*_expired_promo(account_id, now)).exists()
    stale_hold = select(Hold.id).where(*stale_hold_filter(account_id, now)).exists()
    return bool(session.scalar(select(expired_lot | stale_hold)))


def allocations_for(session: Session, transaction_id: int) -> Sequence[LotAllocation]:
    return session.scalars(
        select(LotAllocation).where(LotAllocation.transaction_id == transaction_id)
    ).all()


def list_transactions(
    session: Session, account_id: str, before_id: int | None, limit: int
) -> Sequence[LedgerTransaction]:
    statement = select(LedgerTransaction).where(LedgerTransaction.account_id == account_id)
    if before_id is not None:
        statement = statement.where(LedgerTransaction.id < before_id)
    return session.scalars(statement.order_by(LedgerTransaction.id.desc()).limit(limit)).all()


def charges_since(
    session: Session, account_id: str, since: datetime, until: datetime | None = None
) -> int:
    statement = select(func.coalesce(func.sum(LedgerTransaction.amount_paisa), 0)).where(
        LedgerTransaction.account_id == account_id,
        LedgerTransaction.kind.in_(CHARGE_KINDS),
        LedgerTransaction.created_at >= since,
    )
    if until is not None:
        statement = statement.where(LedgerTransaction.created_at < until)
    total = session.scalar(statement)
    return -int(total or 0)


def daily_charges_since(
    session: Session, account_id: str, since: datetime, tz: str, until: datetime | None = None
) -> list[tuple[str, int]]:
    day = func.to_char(func.timezone(tz, LedgerTransaction.created_at), "YYYY-MM-DD")
    conditions = [
        LedgerTransaction.account_id == account_id,
        LedgerTransaction.kind.in_(CHARGE_KINDS),
        LedgerTransaction.created_at >= since,
    ]
    if until is not None:
        conditions.append(LedgerTransaction.created_at < until)
    rows = session.execute(
        select(day, func.sum(LedgerTransaction.amount_paisa))
        .where(*conditions)
        .group_by(day)
        .order_by(day)
    ).all()
    return [(str(d), -int(total)) for d, total in rows]
