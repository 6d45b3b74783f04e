"""Ledger transactions, credit lots and their allocations, and what an account needs settled
(expired promo, stale holds) before it is read or changed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from db.models import AccountMonthUsage, CreditLot, Hold, LedgerTransaction, LotAllocation
from domain.history import CALL_TRANSACTION_KINDS, TransactionFilter
from domain.periods import Period
from ledger.repositories.holds import stale_hold_filter

# What "this month's usage" counts. The triggers of migration 0008 keep account_month_usage over
# the same kinds: a new charge kind needs a migration there too (ledger.invariants compares them;
# 0002 added call_adjustment).
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


def _in_period(period: Period) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if period.start is not None:
        conditions.append(LedgerTransaction.created_at >= period.start)
    if period.end is not None:
        conditions.append(LedgerTransaction.created_at < period.end)
    return conditions


def _matching(account_id: str, filters: TransactionFilter) -> list[ColumnElement[bool]]:
    conditions = [LedgerTransaction.account_id == account_id, *_in_period(filters.period)]
    if filters.kinds:
        conditions.append(LedgerTransaction.kind.in_(sorted(filters.kinds)))
    if filters.call_id:  # a call's transactions carry its id as their reference
        conditions.append(LedgerTransaction.kind.in_(sorted(CALL_TRANSACTION_KINDS)))
        conditions.append(LedgerTransaction.reference.startswith(filters.call_id, autoescape=True))
    return conditions


def list_transactions(
    session: Session,
    account_id: str,
    before_id: int | None,
    limit: int,
    filters: TransactionFilter,
) -> Sequence[LedgerTransaction]:
    """Newest first."""
    statement = select(LedgerTransaction).where(*_matching(account_id, filters))
    if before_id is not None:
        statement = statement.where(LedgerTransaction.id < before_id)
    return session.scalars(statement.order_by(LedgerTransaction.id.desc()).limit(limit)).all()


def iter_transactions(
    session: Session, account_id: str, filters: TransactionFilter, batch: int = 500
) -> Iterator[LedgerTransaction]:
    """Oldest first, streamed from a server-side cursor `batch` rows at a time (exports: a
    year of history is never held in memory)."""
    statement = (
        select(LedgerTransaction)
        .where(*_matching(account_id, filters))
        .order_by(LedgerTransaction.id)
        .execution_options(yield_per=batch)
    )
    # The session's identity map holds rows weakly: streamed rows are freed once written.
    yield from session.scalars(statement)


def sum_before(session: Session, account_id: str, moment: datetime) -> int:
    """Σ amounts of an account's transactions before `moment`: its balance then (the sum of
    an account's transactions is its balance)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerTransaction.amount_paisa), 0)).where(
            LedgerTransaction.account_id == account_id, LedgerTransaction.created_at < moment
        )
    )
    return int(total or 0)


@dataclass(frozen=True)
class KindTotals:
    kind: str
    count: int
    credits_paisa: int  # Σ positive amounts
    debits_paisa: int  # Σ negative amounts, as a positive number


def totals_by_kind(session: Session, account_id: str, period: Period) -> list[KindTotals]:
    amount = LedgerTransaction.amount_paisa
    rows = session.execute(
        select(
            LedgerTransaction.kind,
            func.count(),
            func.coalesce(func.sum(case((amount > 0, amount), else_=0)), 0),
            func.coalesce(func.sum(case((amount < 0, -amount), else_=0)), 0),
        )
        .where(LedgerTransaction.account_id == account_id, *_in_period(period))
        .group_by(LedgerTransaction.kind)
        .order_by(LedgerTransaction.kind)
    ).all()
    return [KindTotals(str(k), int(n), int(c), int(d)) for k, n, c, d in rows]


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


def month_charges(session: Session, account_id: str, month: date) -> int:
    """Σ the account's charges in the calendar month starting on `month` (the counter)."""
    total = session.scalar(
        select(AccountMonthUsage.charged_paisa).where(
            AccountMonthUsage.account_id == account_id, AccountMonthUsage.month == month
        )
    )
    return int(total or 0)


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
