"""Coupons: admins create them; a customer previews and redeems (once per account)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from api.auth import Principal, ensure_account_access, require_roles
from api.coupons.schemas import CouponCode, CouponCreate, CouponOut, CouponPreview, CouponRedeemed
from api.deps import SessionDep, StateDep, run_db
from api.errors import MUTATING
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.metrics import CREDITS_POSTED
from api.notify import balance_changed
from api.schemas import AccountIdPath, BalanceOut, as_utc
from domain.ledger_types import BalanceSnapshot
from ledger import balances, coupons

router = APIRouter(tags=["coupons"], route_class=IdempotentRoute)
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Customer = Annotated[Principal, Depends(require_roles("customer"))]


def _create(session: Session, body: CouponCreate) -> CouponOut:
    coupon = coupons.create_coupon(
        session,
        code=body.code,
        bonus_paisa=body.bonus_paisa,
        max_redemptions=body.max_redemptions,
        expires_at=as_utc(body.expires_at),
        promo_expires_at=as_utc(body.promo_expires_at),
    )
    session.flush()
    session.refresh(coupon)
    return CouponOut.model_validate(coupon)


@router.post(
    "/v1/coupons",
    status_code=201,
    response_model=CouponOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Create a coupon",
)
async def create_coupon(body: CouponCreate, _: Admin, factory: SessionDep) -> CouponOut:
    return await run_db(factory, lambda s: _create(s, body))


@router.post(
    "/v1/accounts/{account_id}/coupons/preview",
    response_model=CouponPreview,
    responses=MUTATING,
    summary="What a coupon would give, without redeeming it",
)
async def preview_coupon(
    account_id: AccountIdPath, body: CouponCode, who: Customer, factory: SessionDep
) -> CouponPreview:
    ensure_account_access(who, account_id)

    def work(session: Session) -> CouponPreview:
        coupon = coupons.preview_coupon(session, account_id=account_id, code=body.code)
        return CouponPreview(
            code=coupon.code,
            bonus_paisa=coupon.bonus_paisa,
            promo_expires_at=coupon.promo_expires_at,
        )

    return await run_db(factory, work)


@router.post(
    "/v1/accounts/{account_id}/coupons/redeem",
    response_model=CouponRedeemed,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Redeem a coupon: promo credit, instantly; once per account",
)
async def redeem_coupon(
    account_id: AccountIdPath,
    body: CouponCode,
    who: Customer,
    factory: SessionDep,
    state: StateDep,
) -> CouponRedeemed:
    ensure_account_access(who, account_id)

    def work(session: Session) -> tuple[CouponRedeemed, BalanceSnapshot]:
        transaction, balance = coupons.redeem_coupon(session, account_id=account_id, code=body.code)
        session.flush()
        redeemed = CouponRedeemed(
            code=body.code,
            bonus_paisa=transaction.amount_paisa,
            transaction_id=transaction.id,
            promo_expires_at=(transaction.details or {}).get("promo_expires_at"),
            balance=BalanceOut.of(balances.summary_of(session, balance)),
        )
        return redeemed, balance

    redeemed, snapshot = await run_db(factory, work)
    CREDITS_POSTED.labels(kind="coupon").inc()
    await balance_changed(state, snapshot)
    return redeemed
