"""Accounts, balances, transaction history and top-ups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from api.accounts import service as accounts
from api.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountOut,
    AccountPatch,
    TopUpCreate,
    TopUpOut,
)
from api.auth import Principal, ensure_account_access, require_roles
from api.deps import PolicyDep, SessionDep, StateDep, run_db
from api.errors import COMMON, MUTATING, ApiError
from api.filters import TransactionFilterDep
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.metrics import CREDITS_POSTED
from api.notify import balance_changed
from api.schemas import AccountIdPath, BalanceOut, Limit, TransactionOut, TransactionPage
from ledger import balances

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=IdempotentRoute)
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Reader = Annotated[Principal, Depends(require_roles("customer", "support"))]
Settler = Annotated[Principal, Depends(require_roles("customer"))]  # and admin


@router.post(
    "",
    status_code=201,
    response_model=AccountCreated,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Create an account (with its welcome promo and a customer API key)",
)
async def create_account(
    body: AccountCreate, _: Admin, factory: SessionDep, policy: PolicyDep, state: StateDep
) -> AccountCreated:
    created, snapshot = await run_db(factory, lambda s: accounts.create_account(s, policy, body))
    if created.balance.promo_paisa:
        CREDITS_POSTED.labels(kind="welcome").inc()
    await balance_changed(state, snapshot)
    return created


@router.get(
    "/{account_id}",
    response_model=AccountOut,
    responses=COMMON,
    summary="An account's profile",
)
async def get_account(account_id: AccountIdPath, who: Reader, factory: SessionDep) -> AccountOut:
    ensure_account_access(who, account_id)
    return await run_db(factory, lambda s: accounts.get_account(s, account_id))


@router.patch(
    "/{account_id}",
    response_model=AccountOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Settings: customer: its alert threshold and auto-recharge (needs a saved card); "
    "admin: also name, email, margin rate",
)
async def update_account(
    account_id: AccountIdPath,
    body: AccountPatch,
    who: Settler,
    factory: SessionDep,
    state: StateDep,
) -> AccountOut:
    ensure_account_access(who, account_id)
    refused = accounts.refused_settings(body, is_admin=who.is_admin)
    if refused:
        raise ApiError(403, "forbidden", f"only an admin key may change {refused}")
    bounds = (state.settings.checkout_min_paisa, state.settings.checkout_max_paisa)
    updated, snapshot = await run_db(
        factory, lambda s: accounts.update_account(s, account_id, body, checkout_bounds=bounds)
    )
    # A threshold raised above the balance (alert or auto-recharge) is a crossing: hand it over.
    await balance_changed(state, snapshot)
    return updated


@router.get(
    "/{account_id}/balance",
    response_model=BalanceOut,
    responses=COMMON,
    summary="Balance: available, paid, promo, reserved, this month's usage",
)
async def get_balance(account_id: AccountIdPath, who: Reader, factory: SessionDep) -> BalanceOut:
    ensure_account_access(who, account_id)
    summary = await run_db(factory, lambda s: balances.balance_summary(s, account_id))
    return BalanceOut.of(summary)


@router.get(
    "/{account_id}/transactions",
    response_model=TransactionPage,
    responses=COMMON,
    summary="Transaction history, newest first, cursor-paginated; filters type, from, to "
    "(dates, Asia/Kolkata), call_id",
)
async def list_transactions(
    account_id: AccountIdPath,
    who: Reader,
    factory: SessionDep,
    filters: TransactionFilterDep,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page"),
    ] = None,
    limit: Limit = 50,
) -> TransactionPage:
    ensure_account_access(who, account_id)

    def page(session: Session) -> TransactionPage:
        rows, next_cursor = accounts.transactions_page(session, account_id, cursor, limit, filters)
        items = [TransactionOut.model_validate(t) for t in rows]
        return TransactionPage(items=items, next_cursor=next_cursor)

    return await run_db(factory, page)


@router.post(
    "/{account_id}/topups",
    status_code=201,
    response_model=TopUpOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Credit a payment (the payment webhook); idempotent on payment_reference",
)
async def create_topup(
    account_id: AccountIdPath, body: TopUpCreate, _: Admin, factory: SessionDep, state: StateDep
) -> TopUpOut:
    result, snapshot = await run_db(
        factory,
        lambda s: accounts.top_up(s, account_id, body.amount_paisa, body.payment_reference),
    )
    CREDITS_POSTED.labels(kind="topup").inc()
    await balance_changed(state, snapshot)
    return result
