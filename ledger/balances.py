"""Balance reads: the summary (snapshot + this month's usage), daily spend, the transaction
history. Reads settle expired promo and stale holds first (posting.fresh_account)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from db.models import LedgerTransaction
from domain.history import TransactionFilter
from domain.ledger_types import BalanceSnapshot
from domain.periods import BILLING_TZ_NAME, month_start, next_month_start
from ledger.errors import NotFound
from ledger.posting import fresh_account, snapshot, utcnow
from ledger.repositories import accounts as account_rows
from ledger.repositories import journal


@dataclass(frozen=True)
class BalanceSummary:
    balance: BalanceSnapshot
    month_usage_paisa: int


def month_usage_paisa(session: Session, account_id: str, now: datetime) -> int:
    return journal.month_charges(session, account_id, month_start(now).date())


def balance_summary(
    session: Session, account_id: str, now: datetime | None = None
) -> BalanceSummary:
    now = now or utcnow()
    account = fresh_account(session, account_id, now)
    return BalanceSummary(
        balance=snapshot(account), month_usage_paisa=month_usage_paisa(session, account_id, now)
    )


def summary_of(
    session: Session, balance: BalanceSnapshot, now: datetime | None = None
) -> BalanceSummary:
    """The summary for a snapshot an operation just returned (in its own transaction): the
    balance is not read again, only this month's usage is added."""
    return BalanceSummary(
        balance=balance,
        month_usage_paisa=month_usage_paisa(session, balance.account_id, now or utcnow()),
    )


def daily_spend_this_month(
    session: Session, account_id: str, now: datetime | None = None
) -> list[tuple[str, int]]:
    now = now or utcnow()
    return journal.daily_charges_since(
        session, account_id, month_start(now), BILLING_TZ_NAME, next_month_start(now)
    )


def list_transactions(
    session: Session,
    account_id: str,
    *,
    before_id: int | None,
    limit: int,
    filters: TransactionFilter | None = None,
) -> list[LedgerTransaction]:
    """Newest first; `filters` narrows by type, period and call id."""
    if account_rows.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    return list(
        journal.list_transactions(
            session, account_id, before_id, limit, filters or TransactionFilter()
        )
    )
