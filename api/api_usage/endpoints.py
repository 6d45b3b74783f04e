"""osmAPI (the LLM gateway) shares the balance: ask before forwarding, charge when done; a batch
form charges up to 1,000 finished requests in one call (docs/api.md)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from api.api_usage import service
from api.api_usage.schemas import (
    ApiAuthorizeIn,
    ApiAuthorizeOut,
    ApiUsageBatchIn,
    ApiUsageBatchOut,
    ApiUsageIn,
    ApiUsageOut,
)
from api.auth import Principal, require_roles
from api.deps import StateDep
from api.errors import MUTATING, R402, problem
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.metrics import record_authorization
from ledger.api_requests import single

router = APIRouter(prefix="/v1/api-usage", tags=["osmAPI usage"], route_class=IdempotentRoute)
Gateway = Annotated[Principal, Depends(require_roles("orchestrator"))]


@router.post(
    "/authorize",
    response_model=ApiAuthorizeOut,
    responses={**MUTATING, **R402},
    summary="May this account start an API request? (402 insufficient_balance if not)",
)
async def authorize_api_request(
    body: ApiAuthorizeIn, _: Gateway, state: StateDep
) -> ApiAuthorizeOut | JSONResponse:
    started = time.perf_counter()
    decision = await service.authorize(state, body.account_id)
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
async def charge_api_usage(body: ApiUsageIn, _: Gateway, state: StateDep) -> Response:
    result = await service.charge(state, [service.usage_of(body)])
    charge, _balance = single(result)
    return service.json(service.charge_out(charge, result.accounts[charge.account_id]))


@router.post(
    "/batch",
    response_model=ApiUsageBatchOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Charge up to 1,000 finished LLM requests in one call; each idempotent on "
    "request_id, with a result per request",
)
async def charge_api_usage_batch(body: ApiUsageBatchIn, _: Gateway, state: StateDep) -> Response:
    result = await service.charge(state, [service.usage_of(r) for r in body.requests])
    items = [service.item_out(item) for item in result.items]
    return service.json(
        ApiUsageBatchOut(
            results=items,
            charged=sum(1 for i in items if i.status == "charged"),
            replayed=sum(1 for i in items if i.status == "replayed"),
            failed=sum(1 for i in items if i.status == "failed"),
            balances=[service.balance_out(a) for _, a in sorted(result.accounts.items())],
        )
    )
