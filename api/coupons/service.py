"""Coupon preview and redeem for a customer: the one path behind both the HTTP API and the
dashboard's Redeem coupon dialog."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.coupons.schemas import CouponPreview, CouponRedeemed
from api.deps import BillingState, run_db
from api.metrics import CREDITS_POSTED
from api.notify import balance_changed
from api.schemas import BalanceOut
from domain.ledger_types import BalanceSnapshot
from ledger import balances, coupons


def preview(session: Session, account_id: str, code: str) -> CouponPreview:
    coupon = coupons.preview_coupon(session, account_id=account_id, code=code)
    return CouponPreview(
        code=coupon.code, bonus_paisa=coupon.bonus_paisa, promo_expires_at=coupon.promo_expires_at
    )


def _redeem(session: Session, account_id: str, code: str) -> tuple[CouponRedeemed, BalanceSnapshot]:
    transaction, balance = coupons.redeem_coupon(session, account_id=account_id, code=code)
    session.flush()
    redeemed = CouponRedeemed(
        code=code,
        bonus_paisa=transaction.amount_paisa,
        transaction_id=transaction.id,
        promo_expires_at=(transaction.details or {}).get("promo_expires_at"),
        balance=BalanceOut.of(balances.summary_of(session, balance)),
    )
    return redeemed, balance


async def redeem(
    state: BillingState, account_id: str, code: str
) -> tuple[CouponRedeemed, BalanceSnapshot]:
    """Credit the promo (once per account), then announce the balance change."""
    redeemed, snapshot = await run_db(state.session_factory, lambda s: _redeem(s, account_id, code))
    CREDITS_POSTED.labels(kind="coupon").inc()
    await balance_changed(state, snapshot)
    return redeemed, snapshot
