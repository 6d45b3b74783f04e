"""An account's history for a period: the monthly statement (opening balance, credits and
debits by kind, closing balance), spend by channel and component, and the rows of the CSV
exports streamed oldest first.

A statement adds up by construction: the opening balance is the sum of every transaction
before the period (the sum of an account's transactions is its balance, contract §2) and the
closing balance is the opening plus the period's amounts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Call, LedgerTransaction
from domain.history import CallFilter, TransactionFilter
from domain.periods import Period
from ledger.errors import NotFound
from ledger.repositories import accounts as account_rows
from ledger.repositories import calls as call_rows
from ledger.repositories import journal
from ledger.repositories.calls import ApiSpend, ChannelSpend
from ledger.repositories.journal import KindTotals

__all__ = [
    "ApiSpend",
    "ChannelSpend",
    "KindTotals",
    "Statement",
    "UsageSummary",
    "export_calls",
    "export_transactions",
    "statement",
    "usage_summary",
]


@dataclass(frozen=True)
class Statement:
    account_id: str
    period: Period
    opening_balance_paisa: int
    lines: list[KindTotals]  # one per transaction kind seen in the period

    @property
    def credits_paisa(self) -> int:
        return sum(line.credits_paisa for line in self.lines)

    @property
    def debits_paisa(self) -> int:
        return sum(line.debits_paisa for line in self.lines)

    @property
    def closing_balance_paisa(self) -> int:
        return self.opening_balance_paisa + self.credits_paisa - self.debits_paisa

    @property
    def transaction_count(self) -> int:
        return sum(line.count for line in self.lines)


@dataclass(frozen=True)
class UsageSummary:
    account_id: str
    period: Period
    channels: list[ChannelSpend]
    api: ApiSpend


def _require(session: Session, account_id: str) -> None:
    if account_rows.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")


def statement(session: Session, account_id: str, period: Period) -> Statement:
    _require(session, account_id)
    opening = journal.sum_before(session, account_id, period.start) if period.start else 0
    return Statement(
        account_id, period, opening, journal.totals_by_kind(session, account_id, period)
    )


def usage_summary(session: Session, account_id: str, period: Period) -> UsageSummary:
    """Charges posted in `period`: calls per channel and osmAPI requests."""
    _require(session, account_id)
    return UsageSummary(
        account_id,
        period,
        call_rows.spend_by_channel(session, account_id, period),
        call_rows.api_request_spend(session, account_id, period),
    )


def export_transactions(
    session: Session, account_id: str, filters: TransactionFilter
) -> Iterator[LedgerTransaction]:
    """The account's transactions matching `filters`, oldest first, streamed. The account is
    checked now (NotFound), before the first row is asked for."""
    _require(session, account_id)
    return journal.iter_transactions(session, account_id, filters)


def export_calls(session: Session, account_id: str, filters: CallFilter) -> Iterator[Call]:
    _require(session, account_id)
    return call_rows.iter_calls(session, account_id, filters)
