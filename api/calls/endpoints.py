"""Call lifecycle over HTTP, for orchestrators not written in Python: every call goes through
`CallBillingWorkflow` (Update-with-Start `authorize`, `usage`/`hangup` signals, `status` query),
exactly as the Python client does, so both paths behave the same."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from api.auth import Principal, ensure_account_access, require_roles
from api.calls import service as calls
from api.calls.schemas import (
    AuthorizeCall,
    AuthorizeOut,
    CallIdPath,
    CallOut,
    CallPage,
    Hangup,
    HangupAccepted,
    UsageAccepted,
    UsageBatch,
    UsageBody,
    UsageEventIn,
)
from api.deps import BillingClientDep, SessionDep, StateDep, run_db
from api.errors import COMMON, MUTATING, R402, R503, problem
from api.filters import CallFilterDep
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.metrics import record_charge
from api.notify import balance_changed
from api.schemas import AccountIdPath, Limit
from domain.contracts import CallState
from domain.ledger_types import REASON_BILLING_UNAVAILABLE
from ledger.errors import NotFound

log = logging.getLogger("api.calls")
# A Temporal round trip that takes longer is answered 503 temporal_unavailable (retry is safe:
# authorize is idempotent on call_id, usage on event_id, hangup first-wins).
TEMPORAL_TIMEOUT = 15.0

router = APIRouter(tags=["calls"], route_class=IdempotentRoute)
Orchestrator = Annotated[Principal, Depends(require_roles("orchestrator"))]
CallReader = Annotated[Principal, Depends(require_roles("customer", "support", "orchestrator"))]
AccountReader = Annotated[Principal, Depends(require_roles("customer", "support"))]


@router.post(
    "/v1/calls",
    response_model=AuthorizeOut,
    responses={**MUTATING, **R402, **R503},
    dependencies=[Depends(idempotency_key_header)],
    summary="Authorize a call (Update-with-Start of CallBillingWorkflow)",
    description="Refused calls answer 402 `insufficient_balance` with the same fields. "
    "Repeating it for a call_id returns the same decision.",
)
async def authorize_call(
    body: AuthorizeCall, _: Orchestrator, factory: SessionDep, billing: BillingClientDep
) -> AuthorizeOut | JSONResponse:
    await run_db(
        factory,
        lambda s: calls.precheck_authorize(s, body.call_id, body.account_id, body.channel),
    )
    result = await asyncio.wait_for(
        billing.authorize(
            body.call_id,
            body.account_id,
            body.channel,
            started_at=body.started_at.isoformat() if body.started_at else None,
        ),
        TEMPORAL_TIMEOUT,
    )
    out = AuthorizeOut(call_id=body.call_id, **asdict(result))
    if result.reason == REASON_BILLING_UNAVAILABLE:
        # Billing could not decide (database or worker down): an outage, not a refusal. The
        # workflow voided whatever the failed authorize may have left.
        return problem(
            503,
            REASON_BILLING_UNAVAILABLE,
            "billing could not authorize the call right now; no hold was left behind",
            extra=out.model_dump(),
            headers={"Retry-After": "1"},
        )
    if not result.authorized:
        return problem(
            402,
            result.reason or "insufficient_balance",
            "the available balance is below the minimum balance needed to start a call",
            extra=out.model_dump(),
        )
    return out


@router.post(
    "/v1/calls/{call_id}/usage",
    status_code=202,
    response_model=UsageAccepted,
    responses={**MUTATING, **R503},
    dependencies=[Depends(idempotency_key_header)],
    summary="Report usage: one event, a list, or {events: [...]} (one signal)",
    description="For a finalized call, late usage: within the late-usage window of its hangup "
    "the call is re-priced and the difference posted as a `call_adjustment` (repeated event ids "
    "change nothing); after it, 409 `call_ended`.",
)
async def report_usage(
    call_id: CallIdPath,
    body: UsageBody,
    _: Orchestrator,
    factory: SessionDep,
    billing: BillingClientDep,
    state: StateDep,
) -> UsageAccepted:
    if isinstance(body, UsageEventIn):
        events = [body]
    elif isinstance(body, UsageBatch):
        events = body.events
    else:
        events = list(body)
    context = await run_db(factory, lambda s: calls.call_context(s, call_id))
    raw = calls.validate_usage(context, events)
    if context.status == CallState.FINALIZED:
        window = state.policy.late_usage_window
        late, balance = await run_db(factory, lambda s: calls.late_usage(s, call_id, raw, window))
        if late.adjustment_paisa:
            record_charge("call_adjustment", late.adjustment_paisa)
            await balance_changed(state, balance)
        return UsageAccepted(
            call_id=call_id, accepted=len(raw), adjustment_paisa=late.adjustment_paisa
        )
    await asyncio.wait_for(billing.report_usage(call_id, {"events": raw}), TEMPORAL_TIMEOUT)
    return UsageAccepted(call_id=call_id, accepted=len(raw), adjustment_paisa=None)


@router.post(
    "/v1/calls/{call_id}/hangup",
    status_code=202,
    response_model=HangupAccepted,
    responses={**MUTATING, **R503},
    dependencies=[Depends(idempotency_key_header)],
    summary="End a call; repeated hangups are harmless (the first wins)",
)
async def hangup(
    call_id: CallIdPath,
    body: Hangup,
    _: Orchestrator,
    factory: SessionDep,
    billing: BillingClientDep,
) -> HangupAccepted:
    context = await run_db(factory, lambda s: calls.call_context(s, call_id))
    if context.status == "finalized":
        return HangupAccepted(call_id=call_id, status="finalized", outcome=context.outcome)
    await asyncio.wait_for(
        billing.hangup(
            call_id,
            body.outcome,
            reason=body.reason,
            ended_at=body.ended_at.isoformat() if body.ended_at else None,
        ),
        TEMPORAL_TIMEOUT,
    )
    return HangupAccepted(call_id=call_id, status="active", outcome=body.outcome)


@router.get(
    "/v1/calls/{call_id}",
    response_model=CallOut,
    responses=COMMON,
    summary="A call: status, outcome, timestamps, usage and its breakdown",
)
async def get_call(call_id: CallIdPath, who: CallReader, state: StateDep) -> CallOut:
    read = await calls.read_call(state, call_id, timeout=TEMPORAL_TIMEOUT)
    if who.role == "customer" and who.account_id != read.call.account_id:
        raise NotFound(f"call {call_id} not found")
    return read.out()


@router.get(
    "/v1/accounts/{account_id}/calls",
    response_model=CallPage,
    responses=COMMON,
    summary="An account's calls, newest first, cursor-paginated; filters channel, outcome, "
    "from, to (dates, Asia/Kolkata), call_id",
)
async def list_calls(
    account_id: AccountIdPath,
    who: AccountReader,
    factory: SessionDep,
    filters: CallFilterDep,
    cursor: Annotated[
        str | None,
        Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description="`next_cursor`"),
    ] = None,
    limit: Limit = 50,
) -> CallPage:
    ensure_account_access(who, account_id)
    items, next_cursor = await run_db(
        factory, lambda s: calls.list_calls(s, account_id, cursor, limit, filters)
    )
    return CallPage(items=items, next_cursor=next_cursor)
