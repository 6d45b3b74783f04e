"""Checkouts, gateway payments and events, saved payment methods."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.payment_models import Checkout, GatewayEvent, GatewayPayment, PaymentMethod


def get_checkout(session: Session, checkout_id: str) -> Checkout | None:
    return session.get(Checkout, checkout_id)


def checkout_by_order(session: Session, order_id: str, *, lock: bool = False) -> Checkout | None:
    statement = select(Checkout).where(Checkout.order_id == order_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def lock_checkout(session: Session, checkout_id: str) -> Checkout | None:
    return session.scalars(
        select(Checkout)
        .where(Checkout.id == checkout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def checkout_by_request_key(session: Session, request_key: str) -> Checkout | None:
    return session.scalars(
        select(Checkout).where(Checkout.request_key == request_key)
    ).one_or_none()


def checkout_by_payment(session: Session, payment_id: str) -> Checkout | None:
    return session.scalars(select(Checkout).where(Checkout.payment_id == payment_id)).one_or_none()


def get_payment(session: Session, payment_id: str, *, lock: bool = False) -> GatewayPayment | None:
    statement = select(GatewayPayment).where(GatewayPayment.id == payment_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def captured_payments(session: Session, account_id: str) -> Sequence[GatewayPayment]:
    """An account's credited payments, newest first (what refunds go back to)."""
    return session.scalars(
        select(GatewayPayment)
        .where(GatewayPayment.account_id == account_id, GatewayPayment.status == "captured")
        .order_by(GatewayPayment.captured_at.desc(), GatewayPayment.id.desc())
    ).all()


def record_event(
    session: Session, *, dedupe_key: str, values: dict[str, Any]
) -> tuple[GatewayEvent, bool]:
    """Store an event once per `dedupe_key`; a repeat only counts the delivery. Returns the row
    and whether it was new."""
    inserted = session.execute(
        insert(GatewayEvent)
        .values(dedupe_key=dedupe_key, deliveries=1, status="received", **values)
        .on_conflict_do_update(
            index_elements=[GatewayEvent.dedupe_key],
            set_={"deliveries": GatewayEvent.deliveries + 1},
        )
        .returning(GatewayEvent.id, GatewayEvent.deliveries)
    ).one()
    event = session.get(GatewayEvent, inserted.id, populate_existing=True)
    assert event is not None
    return event, inserted.deliveries == 1


def lock_event(session: Session, event_id: int) -> GatewayEvent | None:
    return session.scalars(
        select(GatewayEvent)
        .where(GatewayEvent.id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def events_with_disposition(
    session: Session, dispositions: Collection[str], before_id: int | None, limit: int
) -> Sequence[GatewayEvent]:
    statement = select(GatewayEvent).where(GatewayEvent.disposition.in_(list(dispositions)))
    if before_id is not None:
        statement = statement.where(GatewayEvent.id < before_id)
    return session.scalars(statement.order_by(GatewayEvent.id.desc()).limit(limit)).all()


def unprocessed_events_for_order(session: Session, order_id: str) -> Sequence[GatewayEvent]:
    return session.scalars(
        select(GatewayEvent)
        .where(GatewayEvent.order_id == order_id, GatewayEvent.status == "received")
        .order_by(GatewayEvent.id)
    ).all()


def method_by_token(session: Session, token_id: str) -> PaymentMethod | None:
    return session.scalars(
        select(PaymentMethod).where(PaymentMethod.token_id == token_id)
    ).one_or_none()


def get_method(session: Session, method_id: str) -> PaymentMethod | None:
    return session.get(PaymentMethod, method_id)


def latest_method(session: Session, account_id: str) -> PaymentMethod | None:
    return session.scalars(
        select(PaymentMethod)
        .where(PaymentMethod.account_id == account_id)
        .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
        .limit(1)
    ).one_or_none()


def touch_checkout(session: Session, checkout_id: str, now: datetime, **values: Any) -> None:
    session.execute(
        update(Checkout).where(Checkout.id == checkout_id).values(updated_at=now, **values)
    )


def open_auto_recharge(session: Session, account_id: str, now: datetime) -> Checkout | None:
    """An auto-recharge checkout of the account still waiting for its payment."""
    return session.scalars(
        select(Checkout)
        .where(
            Checkout.account_id == account_id,
            Checkout.kind == "auto_recharge",
            Checkout.status == "created",
            Checkout.expires_at > now,
        )
        .limit(1)
    ).one_or_none()


def auto_recharges_without_order(
    session: Session, account_id: str, now: datetime
) -> Sequence[Checkout]:
    return session.scalars(
        select(Checkout).where(
            Checkout.account_id == account_id,
            Checkout.kind == "auto_recharge",
            Checkout.status == "created",
            Checkout.order_id.is_(None),
            Checkout.expires_at > now,
        )
    ).all()
