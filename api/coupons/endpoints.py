"""Coupons: admins create them; a customer previews and redeems (once per account)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from api.auth import Principal, ensure_account_access, require_roles
from api.coupons import service
from api.coupons.schemas import CouponCode, CouponCreate, CouponOut, CouponPreview, CouponRedeemed
from api.deps import SessionDep, StateDep, run_db
from api.errors import MUTATING
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.schemas import AccountIdPath, as_utc
from ledger import coupons

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
    return await run_db(factory, lambda s: service.preview(s, account_id, body.code))


@router.post(
    "/v1/accounts/{account_id}/coupons/redeem",
    response_model=CouponRedeemed,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Redeem a coupon: promo credit, instantly; once per account",
)
async def redeem_coupon(
    account_id: AccountIdPath, body: CouponCode, who: Customer, state: StateDep
) -> CouponRedeemed:
    ensure_account_access(who, account_id)
    redeemed, _ = await service.redeem(state, account_id, body.code)
    return redeemed
