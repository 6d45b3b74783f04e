"""osmAPI (the LLM gateway) shares the balance: ask before forwarding, charge when done."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.api_usage.schemas import ApiAuthorizeIn, ApiAuthorizeOut, ApiUsageIn, ApiUsageOut
from api.auth import Principal, require_roles
from api.deps import SessionDep, StateDep, run_db
from api.errors import MUTATING, R402, problem
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.metrics import record_authorization, record_charge
from api.notify import balance_changed
from api.schemas import BalanceOut
from domain.ledger_types import BalanceSnapshot
from ledger import api_requests, balances

router = APIRouter(prefix="/v1/api-usage", tags=["osmAPI usage"], route_class=IdempotentRoute)
Gateway = Annotated[Principal, Depends(require_roles("orchestrator"))]


@router.post(
    "/authorize",
    response_model=ApiAuthorizeOut,
    responses={**MUTATING, **R402},
    summary="May this account start an API request? (402 insufficient_balance if not)",
)
async def authorize_api_request(
    body: ApiAuthorizeIn, _: Gateway, factory: SessionDep
) -> ApiAuthorizeOut | JSONResponse:
    started = time.perf_counter()
    decision = await run_db(
        factory, lambda s: api_requests.authorize_api_request(s, account_id=body.account_id)
    )
    record_authorization("api", decision.authorized, decision.reason, started)
    out = ApiAuthorizeOut(
        account_id=body.account_id,
        authorized=decision.authorized,
        reason=decision.reason,
        available_paisa=decision.available_paisa,
        rate_card_version=decision.rate_card_version,
    )
    if not decision.authorized:
        return problem(
            402,
            decision.reason or "insufficient_balance",
            "the available balance is below the minimum balance",
            extra=out.model_dump(),
        )
    return out


@router.post(
    "",
    response_model=ApiUsageOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Charge a finished LLM request (never refused); idempotent on request_id",
)
async def charge_api_usage(
    body: ApiUsageIn, _: Gateway, factory: SessionDep, state: StateDep
) -> ApiUsageOut:
    def work(session: Session) -> tuple[ApiUsageOut, BalanceSnapshot, bool]:
        existed = api_requests.find_api_request(session, body.request_id) is not None
        record, balance = api_requests.charge_api_usage(
            session,
            request_id=body.request_id,
            account_id=body.account_id,
            sku=body.sku,
            input_tokens=body.input_tokens,
            output_tokens=body.output_tokens,
        )
        session.flush()
        out = ApiUsageOut(
            request_id=record.request_id,
            account_id=record.account_id,
            sku=record.sku,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            rate_card_version=record.rate_card_version,
            provider_total_paisa=record.provider_total_paisa,
            margin_paisa=record.margin_paisa,
            total_paisa=record.total_paisa,
            transaction_id=record.transaction_id,
            balance=BalanceOut.of(balances.summary_of(session, balance)),
        )
        return out, balance, not existed

    out, snapshot, new = await run_db(factory, work)
    if new and out.total_paisa > 0:
        record_charge("api", out.total_paisa)
        await balance_changed(state, snapshot)
    return out
