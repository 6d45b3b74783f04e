"""Accounts, balances, transaction history and top-ups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

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
from api.errors import COMMON, MUTATING
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.metrics import CREDITS_POSTED
from api.notify import balance_changed
from api.schemas import AccountIdPath, BalanceOut, Limit, TransactionOut, TransactionPage
from ledger import balances

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=IdempotentRoute)
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Reader = Annotated[Principal, Depends(require_roles("customer", "support"))]
Owner = Annotated[Principal, Depends(require_roles("customer"))]


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
    summary="Settings: the alert threshold and auto-recharge (needs a saved card)",
)
async def update_account(
    account_id: AccountIdPath, body: AccountPatch, who: Owner, factory: SessionDep, state: StateDep
) -> AccountOut:
    ensure_account_access(who, account_id)
    bounds = (state.settings.checkout_min_paisa, state.settings.checkout_max_paisa)
    account, snapshot = await run_db(
        factory, lambda s: accounts.update_account(s, account_id, body, checkout_bounds=bounds)
    )
    # AccountWorkflow learns the new thresholds (a balance already below one is a crossing).
    await balance_changed(state, snapshot)
    return account


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
    summary="Transaction history, newest first, cursor-paginated",
)
async def list_transactions(
    account_id: AccountIdPath,
    who: Reader,
    factory: SessionDep,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page"),
    ] = None,
    limit: Limit = 50,
) -> TransactionPage:
    ensure_account_access(who, account_id)
    before = int(cursor) if cursor else None
    rows = await run_db(
        factory,
        lambda s: [
            TransactionOut.model_validate(t)
            for t in balances.list_transactions(s, account_id, before_id=before, limit=limit + 1)
        ],
    )
    more = len(rows) > limit
    items = rows[:limit]
    return TransactionPage(items=items, next_cursor=str(items[-1].id) if more else None)


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
