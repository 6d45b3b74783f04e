"""Where a refund's money goes back to (contract §6): its parts, planned once with its debit and
settled one by one (docs/accounts-and-refunds.md).

- `plan_parts` runs in the refund's debit transaction (the account row locked): the split of
  `domain.refund_parts.plan_parts` over the account's captured payments, newest first, written
  as `refund_parts` rows with each payment's `refunded_paisa` raised in the same transaction, so
  a retry replans nothing and two refunds never send one payment back twice.
- `settle_part` records what the gateway said about a part, first settlement wins: `processed`,
  or `failed` with the part's amount credited back (`refund_reversal`, key
  `refund:<id>:part:<n>:reversal`) and the payment's `refunded_paisa` lowered again.
- `finish_refund` gives the refund its status once every part is settled
  (`domain.refund_parts.refund_outcome`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import Account, Refund
from db.payment_models import RefundPart
from domain.ledger_types import BalanceSnapshot
from domain.refund_parts import (
    RefundablePayment,
    RefundPartKind,
    RefundPartStatus,
    part_idempotency_key,
    refund_outcome,
)
from domain.refund_parts import plan_parts as split_refund
from ledger.errors import Conflict, NotFound
from ledger.posting import credit_paid, request_hash, require_account, snapshot, utcnow
from ledger.repositories import catalog
from ledger.repositories import payments as payments_repo
from ledger.repositories import refund_parts as repo


def locked_refund(session: Session, refund_id: str) -> tuple[Refund, Account]:
    """The refund and its account, locked in the one lock order (account first)."""
    peek = catalog.get_refund(session, refund_id)
    if peek is None:
        raise NotFound(f"refund {refund_id} not found")
    account = require_account(session, peek.account_id)
    refund = catalog.get_refund(session, refund_id, lock=True)
    assert refund is not None
    return refund, account


def plan_parts(session: Session, refund: Refund) -> list[RefundPart]:
    """The refund's parts, planned now if it has none (call with the account row locked)."""
    existing = list(repo.parts_of(session, refund.id))
    if existing:
        return existing
    payments = {p.id: p for p in repo.lock_captured_payments(session, refund.account_id)}
    plan = split_refund(
        refund.amount_paisa,
        [RefundablePayment(p.id, p.amount_paisa - p.refunded_paisa) for p in payments.values()],
    )
    parts = []
    for planned in plan:
        if planned.payment_id is not None:
            payment = payments[planned.payment_id]
            payment.refunded_paisa += planned.amount_paisa
            payment.updated_at = utcnow()
        part = RefundPart(
            refund_id=refund.id,
            part_no=planned.part_no,
            kind=planned.kind.value,
            payment_id=planned.payment_id,
            amount_paisa=planned.amount_paisa,
            status=RefundPartStatus.PENDING.value,
            idempotency_key=part_idempotency_key(refund.id, planned.part_no),
        )
        session.add(part)
        parts.append(part)
    session.flush()
    return parts


def parts(session: Session, refund_id: str) -> list[RefundPart]:
    return list(repo.parts_of(session, refund_id))


def _locked_part(session: Session, refund_id: str, part_no: int) -> tuple[RefundPart, Account]:
    _, account = locked_refund(session, refund_id)
    for part in repo.parts_of(session, refund_id, lock=True):
        if part.part_no == part_no:
            return part, account
    raise NotFound(f"refund {refund_id} has no part {part_no}")


def settle_part(
    session: Session,
    *,
    refund_id: str,
    part_no: int,
    status: RefundPartStatus,
    reference: str | None,
    reason: str | None = None,
) -> tuple[RefundPart, BalanceSnapshot]:
    """Record the gateway's word on a part. A settled part stays as it is (duplicate or late
    webhooks change nothing); `pending` only notes the gateway's reference."""
    part, account = _locked_part(session, refund_id, part_no)
    if part.status != RefundPartStatus.PENDING:
        return part, snapshot(account)
    if reference and not part.gateway_reference:
        part.gateway_reference = reference
    if status == RefundPartStatus.PROCESSED:
        part.status = status.value
    elif status == RefundPartStatus.FAILED:
        transaction = credit_paid(
            session,
            account,
            part.amount_paisa,
            kind="refund_reversal",
            key=f"refund:{refund_id}:part:{part_no}:reversal",
            payload_hash=request_hash({"refund_id": refund_id, "part_no": part_no}),
            contra_book="refunds_payable",
            reference=refund_id,
            description=(
                "Refund to your card failed: amount returned"
                if part.kind == RefundPartKind.GATEWAY
                else "Refund by bank transfer failed: amount returned"
            ),
            details={"refund_id": refund_id, "part_no": part_no},
        )
        if part.payment_id is not None:
            payment = repo.lock_payment(session, part.payment_id)
            assert payment is not None
            payment.refunded_paisa -= part.amount_paisa
            payment.updated_at = utcnow()
        part.status = status.value
        part.failure_reason = (reason or "refused by the payment provider")[:1000]
        part.reversal_transaction_id = transaction.id
    part.updated_at = utcnow()
    session.flush()
    return part, snapshot(account)


def finish_refund(session: Session, refund_id: str) -> tuple[Refund, BalanceSnapshot]:
    """`completed` (some part processed; failed ones were credited back) or `failed` (every
    part failed: all the money is back) once no part is pending; a settled refund stays."""
    refund, account = locked_refund(session, refund_id)
    if refund.status != "pending":
        return refund, snapshot(account)
    all_parts = list(repo.parts_of(session, refund_id))
    outcome = refund_outcome([RefundPartStatus(p.status) for p in all_parts])
    if outcome is None:
        raise Conflict(f"refund {refund_id} still has pending parts")
    refund.status = outcome
    references = [p.gateway_reference for p in all_parts if p.status == "processed"]
    refund.gateway_reference = ",".join(r for r in references if r) or None
    failed = [p for p in all_parts if p.status == "failed"]
    if outcome == "failed":  # every part failed and was credited back
        reasons = dict.fromkeys(p.failure_reason or "refused" for p in failed)
        refund.failure_reason = "; ".join(reasons)[:1000]
        refund.reversal_transaction_id = failed[0].reversal_transaction_id
    elif failed:
        refund.failure_reason = "; ".join(
            f"part {p.part_no} ({p.amount_paisa} paisa) returned to the balance: {p.failure_reason}"
            for p in failed
        )[:1000]
    refund.updated_at = utcnow()
    return refund, snapshot(account)


def mark_event_settled(session: Session, event_row_id: int, refund_id: str, part_no: int) -> None:
    """The stored `refund.*` webhook event has been applied to its part."""
    event = payments_repo.lock_event(session, event_row_id)
    if event is not None and event.status != "processed":
        event.status = "processed"
        event.detail = f"refund {refund_id} part {part_no}"
        event.processed_at = utcnow()


def recent_refunds(
    session: Session, account_id: str, limit: int = 10
) -> list[tuple[Refund, list[RefundPart]]]:
    """An account's latest refunds, newest first, each with its parts."""
    refunds = list(repo.recent_refunds(session, account_id, limit))
    by_refund: dict[str, list[RefundPart]] = {r.id: [] for r in refunds}
    for part in repo.parts_of_many(session, [r.id for r in refunds]):
        by_refund[part.refund_id].append(part)
    return [(refund, by_refund[refund.id]) for refund in refunds]


def set_payout_fund_account(
    session: Session, account_id: str, fund_account_id: str | None
) -> str | None:
    """The customer's RazorpayX fund account (their bank account) for refund payout parts."""
    account = require_account(session, account_id)
    account.payout_fund_account_id = fund_account_id
    return account.payout_fund_account_id
