"""What the operations look things up in: rate cards, coupons, API keys, refunds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import (
    ApiKey,
    Coupon,
    CouponRedemption,
    RateCardPrice,
    RateCardVersion,
    Refund,
)


def rate_card_in_force(session: Session, at: datetime) -> RateCardVersion | None:
    return session.scalars(
        select(RateCardVersion)
        .where(RateCardVersion.effective_from <= at)
        .order_by(RateCardVersion.effective_from.desc(), RateCardVersion.version.desc())
        .limit(1)
    ).one_or_none()


def rate_card_version(session: Session, version: int) -> RateCardVersion | None:
    return session.get(RateCardVersion, version)


def rate_card_prices(session: Session, version: int) -> Sequence[RateCardPrice]:
    return session.scalars(
        select(RateCardPrice)
        .where(RateCardPrice.version == version)
        .order_by(RateCardPrice.sku, RateCardPrice.unit)
    ).all()


def rate_card_by_hash(session: Session, request_hash: str) -> RateCardVersion | None:
    return session.scalars(
        select(RateCardVersion).where(RateCardVersion.request_hash == request_hash).limit(1)
    ).one_or_none()


def get_coupon(session: Session, code: str) -> Coupon | None:
    return session.get(Coupon, code)


def lock_coupon(session: Session, code: str) -> Coupon | None:
    return session.scalars(
        select(Coupon)
        .where(Coupon.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def redemption(session: Session, code: str, account_id: str) -> CouponRedemption | None:
    return session.scalars(
        select(CouponRedemption).where(
            CouponRedemption.code == code, CouponRedemption.account_id == account_id
        )
    ).one_or_none()


def bump_coupon_count(session: Session, code: str) -> None:
    session.execute(
        update(Coupon)
        .where(Coupon.code == code)
        .values(redemption_count=Coupon.redemption_count + 1)
    )


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def get_api_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def get_refund(session: Session, refund_id: str, *, lock: bool = False) -> Refund | None:
    statement = select(Refund).where(Refund.id == refund_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def pending_refunds_before(session: Session, before: datetime, limit: int) -> Sequence[Refund]:
    """Refunds still `pending` that were last changed before `before`, oldest first."""
    return session.scalars(
        select(Refund)
        .where(Refund.status == "pending", Refund.updated_at < before)
        .order_by(Refund.updated_at)
        .limit(limit)
    ).all()
