"""Refunds of paid credit: a pending debit at once (`start_refund`), then completed, or failed
with the money put back as paid credit. Each returns the refund and the balance snapshot."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from db.models import Account, Refund
from domain.balance_rules import refundable_paisa
from domain.ledger_types import BalanceSnapshot
from domain.refund_parts import MIN_REFUND_PAISA
from ledger.errors import Conflict, NotFound, RefundNotAllowed
from ledger.posting import (
    check_amount,
    credit_paid,
    debit,
    housekeeping,
    request_hash,
    require_account,
    snapshot,
    utcnow,
)
from ledger.refund_parts import locked_refund, plan_parts
from ledger.repositories import catalog


def refundable(account: Account) -> int:
    return refundable_paisa(
        paid_paisa=account.paid_paisa,
        promo_paisa=account.promo_paisa,
        reserved_paisa=account.reserved_paisa,
    )


def start_refund(
    session: Session, *, refund_id: str, account_id: str, amount_paisa: int | None
) -> tuple[Refund, BalanceSnapshot]:
    """Debit the paid balance as a pending refund (idempotent on refund_id); None refunds all
    that is refundable. Its parts (the payments it goes back to, and a payout for the rest) are
    planned in the same transaction (`ledger.refund_parts.plan_parts`); a pending refund from
    before parts existed gets them on its next start."""
    account = require_account(session, account_id)
    existing = catalog.get_refund(session, refund_id)
    if existing is not None:
        if existing.account_id != account_id or (
            amount_paisa is not None and existing.amount_paisa != amount_paisa
        ):
            raise Conflict(f"refund {refund_id} exists with other terms")
        if existing.status == "pending":
            plan_parts(session, existing)
        return existing, snapshot(account)
    housekeeping(session, account, utcnow())
    available = refundable(account)
    amount = available if amount_paisa is None else amount_paisa
    if amount_paisa is not None:
        check_amount(amount_paisa)
    if amount <= 0:
        raise RefundNotAllowed("there is no refundable paid balance")
    if amount < MIN_REFUND_PAISA:
        raise RefundNotAllowed(
            f"a refund of {amount} paisa is below the gateway's minimum of {MIN_REFUND_PAISA}"
        )
    if amount > available:
        raise RefundNotAllowed(
            f"refund of {amount} paisa exceeds the refundable paid balance of {available}"
        )
    transaction = debit(
        session,
        account,
        amount,
        kind="refund",
        key=f"refund:{refund_id}",
        payload_hash=request_hash({"refund_id": refund_id, "amount": amount}),
        contra=[("refunds_payable", amount)],
        reference=refund_id,
        description="Refund to original payment method",
        promo_allowed=False,
    )
    refund = Refund(
        id=refund_id,
        account_id=account_id,
        amount_paisa=amount,
        status="pending",
        debit_transaction_id=transaction.id,
    )
    session.add(refund)
    session.flush()
    plan_parts(session, refund)
    return refund, snapshot(account)


def complete_refund(
    session: Session, *, refund_id: str, gateway_reference: str | None
) -> tuple[Refund, BalanceSnapshot]:
    refund, account = locked_refund(session, refund_id)
    if refund.status == "failed":
        raise Conflict(f"refund {refund_id} already failed")
    if refund.status == "pending":
        refund.status = "completed"
        refund.gateway_reference = gateway_reference
        refund.updated_at = utcnow()
    return refund, snapshot(account)


def fail_refund(session: Session, *, refund_id: str, reason: str) -> tuple[Refund, BalanceSnapshot]:
    """A refund the gateway refused for good: put the money back as paid credit."""
    refund, account = locked_refund(session, refund_id)
    if refund.status == "completed":
        raise Conflict(f"refund {refund_id} already completed")
    if refund.status == "pending":
        transaction = credit_paid(
            session,
            account,
            refund.amount_paisa,
            kind="refund_reversal",
            key=f"refund:{refund_id}:reversal",
            payload_hash=request_hash({"refund_id": refund_id}),
            contra_book="refunds_payable",
            reference=refund_id,
            description="Refund failed: amount returned",
        )
        refund.status = "failed"
        refund.failure_reason = reason[:1000]
        refund.reversal_transaction_id = transaction.id
        refund.updated_at = utcnow()
    return refund, snapshot(account)


def get_refund(session: Session, refund_id: str) -> Refund:
    refund = catalog.get_refund(session, refund_id)
    if refund is None:
        raise NotFound(f"refund {refund_id} not found")
    return refund


def stale_pending_refunds(
    session: Session, *, older_than: timedelta, limit: int = 100
) -> list[Refund]:
    """Refunds `pending` for longer than `older_than` (for the reconciler to re-drive)."""
    return list(catalog.pending_refunds_before(session, utcnow() - older_than, limit))
