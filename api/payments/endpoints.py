"""Checkouts (customers buying credits), the Razorpay webhook, and unmatched payments for
support (contract §4 and §6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request

from api.auth import Principal, ensure_account_access, require_roles
from api.deps import SessionDep, StateDep, run_db
from api.errors import COMMON, MUTATING, R400, R503
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.payments import service
from api.payments.schemas import (
    CheckoutCreate,
    CheckoutCreated,
    CheckoutOut,
    UnmatchedPage,
    WebhookAck,
)
from api.schemas import AccountIdPath, Limit
from ledger import payments
from ledger.errors import NotFound

router = APIRouter(tags=["payments"], route_class=IdempotentRoute)
Customer = Annotated[Principal, Depends(require_roles("customer"))]
Reader = Annotated[Principal, Depends(require_roles("customer", "support"))]
Support = Annotated[Principal, Depends(require_roles("support"))]
CheckoutIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post(
    "/v1/accounts/{account_id}/checkouts",
    status_code=201,
    response_model=CheckoutCreated,
    responses={**MUTATING, **R503},
    dependencies=[Depends(idempotency_key_header)],
    summary="Buy credits: a Razorpay order for the Billing page's checkout",
)
async def create_checkout(
    account_id: AccountIdPath, body: CheckoutCreate, who: Customer, state: StateDep
) -> CheckoutCreated:
    ensure_account_access(who, account_id)
    return await service.create_checkout(state, account_id, body.amount_paisa, body.save_method)


@router.get(
    "/v1/checkouts/{checkout_id}",
    response_model=CheckoutOut,
    responses=COMMON,
    summary="A checkout: created → paid, failed or expired",
)
async def get_checkout(
    checkout_id: CheckoutIdPath, who: Reader, factory: SessionDep
) -> CheckoutOut:
    checkout = await run_db(factory, lambda s: payments.get_checkout(s, checkout_id))
    if who.role == "customer" and who.account_id != checkout.account_id:
        raise NotFound(f"checkout {checkout_id} not found")
    ensure_account_access(who, checkout.account_id)
    return service.checkout_out(checkout)


@router.post(
    "/v1/webhooks/razorpay",
    response_model=WebhookAck,
    responses={**R400, **R503},
    summary="Razorpay's webhook (authenticated by X-Razorpay-Signature only)",
)
async def razorpay_webhook(
    request: Request,
    state: StateDep,
    x_razorpay_signature: Annotated[str | None, Header()] = None,
    x_razorpay_event_id: Annotated[str | None, Header()] = None,
) -> WebhookAck:
    raw = await request.body()  # the signature is over these exact bytes
    return await service.receive_webhook(state, raw, x_razorpay_signature, x_razorpay_event_id)


@router.get(
    "/v1/payments/unmatched",
    response_model=UnmatchedPage,
    responses=COMMON,
    summary="Payments acknowledged but not credited (unknown order, amount or currency "
    "mismatch), newest first",
)
async def unmatched_payments(
    _: Support,
    factory: SessionDep,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Limit = 50,
) -> UnmatchedPage:
    before = int(cursor) if cursor else None
    rows = await run_db(
        factory,
        lambda s: [
            service.unmatched_out(e) for e in payments.unmatched_events(s, before, limit + 1)
        ],
    )
    items = rows[:limit]
    more = len(rows) > limit
    return UnmatchedPage(items=items, next_cursor=str(items[-1].event_id) if more else None)
