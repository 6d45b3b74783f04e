"""Coupons: admins create them; a customer previews and redeems one (promo credit, once per
account, at most `max_redemptions` in all)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from db.models import Coupon, CouponRedemption, LedgerTransaction
from domain.ledger_types import BalanceSnapshot
from ledger.errors import Conflict, InvalidCoupon, NotFound, ValidationFailed
from ledger.posting import (
    check_amount,
    credit_promo,
    housekeeping,
    request_hash,
    require_account,
    snapshot,
    utcnow,
)
from ledger.repositories import accounts as account_rows
from ledger.repositories import catalog


def create_coupon(
    session: Session,
    *,
    code: str,
    bonus_paisa: int,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
    promo_expires_at: datetime | None = None,
) -> Coupon:
    if not code or len(code) > 64 or any(ch.isspace() for ch in code):
        raise ValidationFailed("code must be 1 to 64 characters without spaces")
    check_amount(bonus_paisa, "bonus_paisa")
    if max_redemptions is not None and not 1 <= max_redemptions <= 10_000_000:
        raise ValidationFailed("max_redemptions must be at least 1")
    existing = catalog.lock_coupon(session, code)
    if existing is not None:
        same = (
            existing.bonus_paisa == bonus_paisa
            and existing.max_redemptions == max_redemptions
            and existing.expires_at == expires_at
            and existing.promo_expires_at == promo_expires_at
        )
        if not same:
            raise Conflict(f"coupon {code} already exists with other terms")
        return existing
    coupon = Coupon(
        code=code,
        bonus_paisa=bonus_paisa,
        max_redemptions=max_redemptions,
        redemption_count=0,
        expires_at=expires_at,
        promo_expires_at=promo_expires_at,
    )
    session.add(coupon)
    session.flush()
    return coupon


def _usable_coupon(
    session: Session, account_id: str, code: str, now: datetime, *, lock: bool
) -> Coupon:
    coupon = catalog.lock_coupon(session, code) if lock else catalog.get_coupon(session, code)
    if coupon is None:
        raise InvalidCoupon("this coupon code does not exist (codes are case-sensitive)")
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise InvalidCoupon("this coupon has expired")
    if catalog.redemption(session, code, account_id) is not None:
        raise InvalidCoupon("this coupon was already redeemed on this account")
    if coupon.max_redemptions is not None and coupon.redemption_count >= coupon.max_redemptions:
        raise InvalidCoupon("this coupon has been fully redeemed")
    return coupon


def preview_coupon(
    session: Session, *, account_id: str, code: str, now: datetime | None = None
) -> Coupon:
    if account_rows.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    return _usable_coupon(session, account_id, code, now or utcnow(), lock=False)


def redeem_coupon(
    session: Session, *, account_id: str, code: str, now: datetime | None = None
) -> tuple[LedgerTransaction, BalanceSnapshot]:
    now = now or utcnow()
    account = require_account(session, account_id)
    coupon = _usable_coupon(session, account_id, code, now, lock=True)
    # Settled first, so the snapshot returned holds no expired promo.
    housekeeping(session, account, now)
    transaction = credit_promo(
        session,
        account,
        coupon.bonus_paisa,
        kind="coupon",
        key=f"coupon:{code}:{account_id}",
        payload_hash=request_hash({"code": code}),
        reference=code,
        description=f"Coupon {code}",
        expires_at=coupon.promo_expires_at,
    )
    session.add(CouponRedemption(code=code, account_id=account_id, transaction_id=transaction.id))
    catalog.bump_coupon_count(session, code)
    session.flush()
    return transaction, snapshot(account)
