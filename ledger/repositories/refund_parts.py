"""Refund parts and the payments they go back to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Refund
from db.payment_models import GatewayPayment, RefundPart


def parts_of(session: Session, refund_id: str, *, lock: bool = False) -> Sequence[RefundPart]:
    statement = select(RefundPart).where(RefundPart.refund_id == refund_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement.order_by(RefundPart.part_no)).all()


def parts_of_many(session: Session, refund_ids: Sequence[str]) -> Sequence[RefundPart]:
    if not refund_ids:
        return []
    return session.scalars(
        select(RefundPart)
        .where(RefundPart.refund_id.in_(list(refund_ids)))
        .order_by(RefundPart.refund_id, RefundPart.part_no)
    ).all()


def lock_captured_payments(session: Session, account_id: str) -> Sequence[GatewayPayment]:
    """An account's captured payments, newest first, locked (what a refund plan draws on)."""
    return session.scalars(
        select(GatewayPayment)
        .where(GatewayPayment.account_id == account_id, GatewayPayment.status == "captured")
        .order_by(GatewayPayment.captured_at.desc(), GatewayPayment.id.desc())
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def lock_payment(session: Session, payment_id: str) -> GatewayPayment | None:
    return session.scalars(
        select(GatewayPayment)
        .where(GatewayPayment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def recent_refunds(session: Session, account_id: str, limit: int) -> Sequence[Refund]:
    return session.scalars(
        select(Refund)
        .where(Refund.account_id == account_id)
        .order_by(Refund.created_at.desc(), Refund.id.desc())
        .limit(limit)
    ).all()
