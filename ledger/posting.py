"""The posting core every balance change goes through: one balanced journal transaction
(`post`), credit lots (`credit_paid`, `credit_promo`), lot-planned debits (`debit`), the
housekeeping that settles expired promo and stale holds, and the balance snapshot.

Each ledger operation (the capability modules next to this one) is one database transaction
(the caller commits, through `db.session.run_in_transaction`), idempotent on its natural key by a
unique constraint, and locks the account row first so everything on one account is serialized.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from db.models import Account, CreditLot, JournalEntry, LedgerTransaction, LotAllocation
from domain.balance_rules import is_refused, plan_debit
from domain.ledger_types import BalanceSnapshot
from domain.rating import DEFAULT_MARGIN_RATE
from ledger.alerts import alert_threshold_of, record_crossing
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.plain_accounts import AccountRow
from ledger.recharge_crossings import record_recharge_crossing
from ledger.repositories import accounts as account_rows
from ledger.repositories import holds as hold_rows
from ledger.repositories import journal

MAX_AMOUNT_PAISA = 10_000_000_00  # ₹1 crore in one operation is already absurd for prepaid


def utcnow() -> datetime:
    return datetime.now(UTC)


def request_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode()
    ).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def check_amount(amount_paisa: int, field: str = "amount_paisa") -> None:
    if isinstance(amount_paisa, bool) or not isinstance(amount_paisa, int):
        raise ValidationFailed(f"{field} must be an integer number of paisa")
    if amount_paisa <= 0 or amount_paisa > MAX_AMOUNT_PAISA:
        raise ValidationFailed(f"{field} must be between 1 and {MAX_AMOUNT_PAISA}")


def snapshot(account: AccountRow) -> BalanceSnapshot:
    return BalanceSnapshot(
        account_id=account.id,
        paid_paisa=account.paid_paisa,
        promo_paisa=account.promo_paisa,
        reserved_paisa=account.reserved_paisa,
        min_balance_paisa=account.min_balance_paisa,
        alert_threshold_paisa=alert_threshold_of(account),
        version=account.version,
        auto_recharge_threshold_paisa=(
            account.auto_recharge_threshold_paisa if account.auto_recharge_enabled else None
        ),
    )


def refused(account: AccountRow) -> bool:
    """The refusal rule (domain.balance_rules) on an account row."""
    return is_refused(
        available_paisa=account.paid_paisa + account.promo_paisa,
        reserved_paisa=account.reserved_paisa,
        min_balance_paisa=account.min_balance_paisa,
    )


def margin_rate(account: AccountRow) -> Decimal:
    return account.margin_rate if account.margin_rate is not None else DEFAULT_MARGIN_RATE


def require_account(session: Session, account_id: str) -> Account:
    """The account row, locked (`FOR UPDATE`): the first step of every write."""
    account = account_rows.lock_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


def fresh_account(session: Session, account_id: str, now: datetime) -> Account:
    """The account for a read; when a promo lot has expired or a hold went stale, settle that
    first (locking the account row before anything else, like every write)."""
    account = account_rows.get_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    if journal.needs_housekeeping(session, account_id, now):
        account = require_account(session, account_id)
        housekeeping(session, account, now)
    return account


def replay(session: Session, key: str, payload_hash: str) -> LedgerTransaction | None:
    """The transaction already posted under `key`, if any; another payload is a conflict."""
    existing = journal.transaction_by_key(session, key)
    if existing is not None and existing.request_hash != payload_hash:
        raise Conflict(f"idempotency key {key!r} was used with a different request")
    return existing


def post(
    session: Session,
    account: Account,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    paid_delta: int,
    promo_delta: int,
    contra: Iterable[tuple[str, int]],
    reference: str | None,
    description: str,
    details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction: customer books move by the deltas, the contra (system)
    entries take the other side; a low-balance crossing it causes goes to the alert outbox in
    the same transaction (ledger.alerts). The account row must already be locked."""
    contra_entries = [(book, amount) for book, amount in contra if amount]
    if paid_delta + promo_delta + sum(a for _, a in contra_entries) != 0:
        raise AssertionError("unbalanced journal transaction")
    if account.promo_paisa + promo_delta < 0:
        raise AssertionError("promo balance would go negative")
    account.paid_paisa += paid_delta
    account.promo_paisa += promo_delta
    account.version += 1
    transaction = LedgerTransaction(
        account_id=account.id,
        kind=kind,
        idempotency_key=key,
        request_hash=payload_hash,
        amount_paisa=paid_delta + promo_delta,
        paid_delta_paisa=paid_delta,
        promo_delta_paisa=promo_delta,
        paid_balance_after=account.paid_paisa,
        promo_balance_after=account.promo_paisa,
        balance_after=account.paid_paisa + account.promo_paisa,
        reference=reference,
        description=description,
        details=details or {},
    )
    session.add(transaction)
    session.flush()
    record_crossing(session, account)
    record_recharge_crossing(session, account)
    session.add_all(
        JournalEntry(
            transaction_id=transaction.id, account_id=account.id, book=book, amount_paisa=amount
        )
        for book, amount in journal_lines(paid_delta, promo_delta, contra_entries)
    )
    return transaction


def journal_lines(
    paid_delta: int, promo_delta: int, contra: Iterable[tuple[str, int]]
) -> list[tuple[str, int]]:
    """A transaction's journal entries (book, signed paisa): the customer books move by the
    deltas, the contra books take the other side; zero lines are left out."""
    lines = [("customer_paid", paid_delta), ("customer_promo", promo_delta), *contra]
    return [(book, amount) for book, amount in lines if amount]


def credit_paid(
    session: Session,
    account: Account,
    amount: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    contra_book: str,
    reference: str | None,
    description: str,
    details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Add paid credit as a new lot; if paid was below zero, the lot first settles that."""
    overdraft = max(0, -account.paid_paisa)
    transaction = post(
        session,
        account,
        kind=kind,
        key=key,
        payload_hash=payload_hash,
        paid_delta=amount,
        promo_delta=0,
        contra=[(contra_book, -amount)],
        reference=reference,
        description=description,
        details=details,
    )
    settled = min(overdraft, amount)
    lot = CreditLot(
        account_id=account.id,
        kind="paid",
        transaction_id=transaction.id,
        original_paisa=amount,
        remaining_paisa=amount - settled,
    )
    session.add(lot)
    session.flush()
    if settled:
        session.add(
            LotAllocation(
                transaction_id=transaction.id,
                lot_id=lot.id,
                account_id=account.id,
                kind="settlement",
                amount_paisa=settled,
            )
        )
    return transaction


def credit_promo(
    session: Session,
    account: Account,
    amount: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    reference: str | None,
    description: str,
    expires_at: datetime | None,
) -> LedgerTransaction:
    transaction = post(
        session,
        account,
        kind=kind,
        key=key,
        payload_hash=payload_hash,
        paid_delta=0,
        promo_delta=amount,
        contra=[("promo_expense", -amount)],
        reference=reference,
        description=description,
        details={"promo_expires_at": expires_at.isoformat()} if expires_at else None,
    )
    session.add(
        CreditLot(
            account_id=account.id,
            kind="promo",
            transaction_id=transaction.id,
            original_paisa=amount,
            remaining_paisa=amount,
            expires_at=expires_at,
        )
    )
    return transaction


def _plan_debit(
    session: Session, account: Account, amount: int, *, promo_allowed: bool
) -> tuple[list[tuple[CreditLot, int]], int, int, int]:
    """The lots that pay a debit (domain.balance_rules.plan_debit on the account's open lots).
    Returns (lot takes, promo part, paid part, overdraft part)."""
    promo_lots = journal.open_lots(session, account.id, "promo") if promo_allowed else []
    paid_lots = journal.open_lots(session, account.id, "paid")
    by_id = {lot.id: lot for lot in (*promo_lots, *paid_lots)}
    plan = plan_debit(
        amount,
        [(lot.id, lot.remaining_paisa) for lot in promo_lots],
        [(lot.id, lot.remaining_paisa) for lot in paid_lots],
        promo_allowed=promo_allowed,
    )
    takes = [(by_id[lot_id], take) for lot_id, take in plan.takes]
    return takes, plan.promo_paisa, plan.paid_paisa, plan.overdraft_paisa


def debit(
    session: Session,
    account: Account,
    amount: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    contra: list[tuple[str, int]],
    reference: str | None,
    description: str,
    details: dict[str, Any] | None = None,
    promo_allowed: bool = True,
) -> LedgerTransaction:
    takes, promo_part, paid_part, overdraft = _plan_debit(
        session, account, amount, promo_allowed=promo_allowed
    )
    transaction = post(
        session,
        account,
        kind=kind,
        key=key,
        payload_hash=payload_hash,
        paid_delta=-paid_part,
        promo_delta=-promo_part,
        contra=contra,
        reference=reference,
        description=description,
        details=details,
    )
    for lot, take in takes:
        lot.remaining_paisa -= take
        session.add(
            LotAllocation(
                transaction_id=transaction.id,
                lot_id=lot.id,
                account_id=account.id,
                kind="debit",
                amount_paisa=take,
            )
        )
    if overdraft:
        session.add(
            LotAllocation(
                transaction_id=transaction.id,
                lot_id=None,
                account_id=account.id,
                kind="overdraft",
                amount_paisa=overdraft,
            )
        )
    return transaction


def housekeeping(session: Session, account: Account, now: datetime) -> None:
    """Expire promo lots past their date and release holds of calls lost for good."""
    for lot in journal.expired_promo_lots(session, account.id, now):
        amount = lot.remaining_paisa
        expiry = post(
            session,
            account,
            kind="promo_expiry",
            key=f"promo-expiry:{lot.id}",
            payload_hash=request_hash({"lot": lot.id}),
            paid_delta=0,
            promo_delta=-amount,
            contra=[("promo_expense", amount)],
            reference=f"lot:{lot.id}",
            description="Promo credit expired",
        )
        lot.remaining_paisa = 0
        session.add(
            LotAllocation(
                transaction_id=expiry.id,
                lot_id=lot.id,
                account_id=account.id,
                kind="debit",
                amount_paisa=amount,
            )
        )
    for hold in hold_rows.stale_active_holds(session, account.id, now):
        hold.status = "expired"
        hold.released_at = now
        account.reserved_paisa -= hold.amount_paisa
