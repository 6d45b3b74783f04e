"""Statements, spend insight and CSV exports of an account's history (contract §4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from api.auth import Principal, ensure_account_access, require_roles
from api.deps import SessionDep, run_db
from api.errors import COMMON, Responses
from api.filters import CallFilterDep, TransactionFilterDep, month_of
from api.schemas import AccountIdPath
from api.statements import csv_export
from api.statements import service as statements
from api.statements.schemas import StatementOut, UsageSummaryOut
from domain.periods import Month
from ledger import accounts
from ledger.posting import utcnow

router = APIRouter(prefix="/v1/accounts", tags=["statements"])
Reader = Annotated[Principal, Depends(require_roles("customer", "support"))]
MonthPath = Annotated[str, Path(max_length=7, description="YYYY-MM", examples=["2026-11"])]
CSV_RESPONSE: Responses = {
    200: {"content": {"text/csv": {}}, "description": "CSV, one row per item"}
}


def _csv(body: Iterator[bytes], name: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def _readable(who: Principal, factory: SessionDep, account_id: str) -> None:
    """404 for another customer's or an unknown account, before any byte is streamed."""
    ensure_account_access(who, account_id)
    await run_db(factory, lambda s: accounts.get_account(s, account_id))


@router.get(
    "/{account_id}/transactions.csv",
    response_class=StreamingResponse,
    responses={**COMMON, **CSV_RESPONSE},
    summary="Transaction history as CSV (oldest first; same filters as the JSON)",
)
async def transactions_csv(
    account_id: AccountIdPath,
    who: Reader,
    factory: SessionDep,
    filters: TransactionFilterDep,
) -> StreamingResponse:
    await _readable(who, factory, account_id)
    return _csv(
        csv_export.transactions_csv(factory, account_id, filters),
        csv_export.filename("transactions", account_id, filters.period),
    )


@router.get(
    "/{account_id}/calls.csv",
    response_class=StreamingResponse,
    responses={**COMMON, **CSV_RESPONSE},
    summary="Calls as CSV with their breakdown (oldest first; same filters as the JSON)",
)
async def calls_csv(
    account_id: AccountIdPath,
    who: Reader,
    factory: SessionDep,
    filters: CallFilterDep,
) -> StreamingResponse:
    await _readable(who, factory, account_id)
    return _csv(
        csv_export.calls_csv(factory, account_id, filters),
        csv_export.filename("calls", account_id, filters.period),
    )


@router.get(
    "/{account_id}/statements/{month}",
    response_model=StatementOut,
    responses=COMMON,
    summary="A monthly statement: opening balance, credits and debits by type, closing balance",
)
async def get_statement(
    account_id: AccountIdPath, month: MonthPath, who: Reader, factory: SessionDep
) -> StatementOut:
    ensure_account_access(who, account_id)
    chosen = month_of(month)
    return await run_db(factory, lambda s: statements.statement(s, account_id, chosen))


@router.get(
    "/{account_id}/usage-summary",
    response_model=UsageSummaryOut,
    responses=COMMON,
    summary="Spend by channel and by component for a month",
)
async def get_usage_summary(
    account_id: AccountIdPath,
    who: Reader,
    factory: SessionDep,
    month: Annotated[
        str | None, Query(max_length=7, description="YYYY-MM; the current month when omitted")
    ] = None,
) -> UsageSummaryOut:
    ensure_account_access(who, account_id)
    chosen = month_of(month) if month else Month.of(utcnow())
    return await run_db(factory, lambda s: statements.usage_summary(s, account_id, chosen))
