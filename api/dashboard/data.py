"""The JSON and CSV behind the dashboard pages, for the signed-in customer's own account.

Every answer comes from the HTTP API's own services (api.accounts, api.calls, api.coupons,
api.statements, the filters of api.filters), so the pages show what the API returns; refusals
are the API's problem responses. Writes need the session's CSRF token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.accounts import service as account_service
from api.accounts.schemas import AccountPatch
from api.calls import service as call_service
from api.coupons import service as coupon_service
from api.coupons.schemas import CouponCode
from api.dashboard import views
from api.dashboard.auth import SignedIn, SignedInWriter
from api.deps import StateDep, run_db
from api.errors import ApiError
from api.filters import CallFilterDep, TransactionFilterDep, month_of
from api.notify import balance_changed
from api.statements import csv_export
from api.statements import service as statements
from domain.ledger_types import BalanceSnapshot
from domain.periods import Month
from ledger import accounts
from ledger.errors import NotFound
from ledger.posting import utcnow

router = APIRouter(prefix="/dashboard/api")
RUNNING_STATUS_TIMEOUT = 2.0  # the breakdown of an active call waits this long for Temporal

Cursor = Annotated[str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_=-]+$")]
MonthQuery = Annotated[str | None, Query(max_length=7, description="YYYY-MM")]


def _month(text: str | None) -> Month:
    return month_of(text) if text else Month.of(utcnow())


def _csv(body: Any, name: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/summary")
async def summary(who: SignedIn, state: StateDep) -> dict[str, Any]:
    return await run_db(state.session_factory, lambda s: views.summary_payload(s, who.account_id))


@router.get("/transactions")
async def transactions(
    who: SignedIn,
    state: StateDep,
    filters: TransactionFilterDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await run_db(
        state.session_factory,
        lambda s: views.transactions_page(s, who.account_id, cursor, limit, filters),
    )


@router.get("/transactions.csv")
async def transactions_csv(
    who: SignedIn, state: StateDep, filters: TransactionFilterDep
) -> StreamingResponse:
    return _csv(
        csv_export.transactions_csv(state.session_factory, who.account_id, filters),
        csv_export.filename("transactions", who.account_id, filters.period),
    )


@router.get("/calls")
async def calls(
    who: SignedIn,
    state: StateDep,
    filters: CallFilterDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return await run_db(
        state.session_factory,
        lambda s: views.calls_page(s, who.account_id, cursor, limit, filters),
    )


@router.get("/calls.csv")
async def calls_csv(who: SignedIn, state: StateDep, filters: CallFilterDep) -> StreamingResponse:
    return _csv(
        csv_export.calls_csv(state.session_factory, who.account_id, filters),
        csv_export.filename("calls", who.account_id, filters.period),
    )


@router.get("/calls/{call_id}")
async def call_detail(call_id: str, who: SignedIn, state: StateDep) -> dict[str, Any]:
    if len(call_id) > 200:
        raise NotFound(f"call {call_id[:20]}… not found")
    read = await call_service.read_call(state, call_id, timeout=RUNNING_STATUS_TIMEOUT)
    if read.call.account_id != who.account_id:
        raise NotFound(f"call {call_id} not found")
    return await run_db(state.session_factory, lambda s: views.call_detail(s, read))


@router.get("/statement")
async def statement(who: SignedIn, state: StateDep, month: MonthQuery = None) -> dict[str, Any]:
    chosen = _month(month)
    out = await run_db(
        state.session_factory, lambda s: statements.statement(s, who.account_id, chosen)
    )
    return out.model_dump(mode="json")


@router.get("/usage-summary")
async def usage_summary(who: SignedIn, state: StateDep, month: MonthQuery = None) -> dict[str, Any]:
    chosen = _month(month)
    out = await run_db(
        state.session_factory, lambda s: statements.usage_summary(s, who.account_id, chosen)
    )
    return out.model_dump(mode="json")


@router.post("/coupons/preview")
async def coupon_preview(body: CouponCode, who: SignedInWriter, state: StateDep) -> Any:
    preview = await run_db(
        state.session_factory, lambda s: coupon_service.preview(s, who.account_id, body.code)
    )
    return preview.model_dump(mode="json")


@router.post("/coupons/redeem")
async def coupon_redeem(body: CouponCode, who: SignedInWriter, state: StateDep) -> Any:
    redeemed, snapshot = await coupon_service.redeem(state, who.account_id, body.code)
    return {
        **redeemed.model_dump(mode="json"),
        "balance": views.balance_view(redeemed.balance, snapshot.version),
    }


@router.patch("/settings")
async def update_settings(body: AccountPatch, who: SignedInWriter, state: StateDep) -> Any:
    """The Settings section: what a customer key may change through `PATCH /v1/accounts/{id}`."""
    refused = account_service.refused_settings(body, is_admin=False)
    if refused:
        raise ApiError(403, "forbidden", f"only an admin key may change {refused}")

    bounds = (state.settings.checkout_min_paisa, state.settings.checkout_max_paisa)

    def work(session: Session) -> tuple[dict[str, Any], BalanceSnapshot]:
        _, snapshot = account_service.update_account(
            session, who.account_id, body, checkout_bounds=bounds
        )
        return views.settings_view(accounts.get_account(session, who.account_id)), snapshot

    settings, snapshot = await run_db(state.session_factory, work)
    await balance_changed(state, snapshot)
    return settings
