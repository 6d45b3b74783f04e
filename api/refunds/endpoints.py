"""Refunds (support), exactly once per `Idempotency-Key`.

The refund id derives from (account, key) (`domain.contracts.refund_id_for`). The API starts
`RefundWorkflow` first, by Update-with-Start of its `decision` update (the workflow id is the
refund's; an existing run is used, a finished one is read), and the workflow's first activity
posts the debit, idempotent on the refund id. So whatever failed before (a 503, a timeout, a
crash between the start and the answer), the retry with the same key finds the same workflow and
the same refund, and the account is debited once. The API waits for the decision at most
`refund_decision_timeout_seconds`: then the refund (202), a refusal (422
`refund_exceeds_refundable`, 404, 409), or 503 `billing_unavailable` (retry with the same key).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import temporalio.client
import temporalio.service
from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import Principal, ensure_account_access, require_roles
from api.deps import SessionDep, StateDep, run_db
from api.errors import COMMON, MUTATING, R503, ApiError, problem
from api.idempotency import HEADER, IdempotentRoute, idempotency_key_header
from api.refunds.schemas import (
    PayoutAccountIn,
    PayoutAccountOut,
    RefundCreate,
    RefundOut,
    RefundPartOut,
)
from api.schemas import AccountIdPath
from domain.contracts import (
    REFUND_DECISION_UPDATE,
    REFUND_DECISION_UPDATE_ID,
    REFUND_WORKFLOW,
    refund_id_for,
    refund_workflow_id,
)
from domain.contracts.refunds import RefundDecisionRequest, RefundInput, RefundResult
from ledger import accounts, refund_parts, refunds
from ledger.errors import BillingError, Conflict, NotFound, RefundNotAllowed, ValidationFailed

log = logging.getLogger("api.refunds")
router = APIRouter(tags=["refunds"], route_class=IdempotentRoute)
Support = Annotated[Principal, Depends(require_roles("support"))]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key_header)]

# A refusal's code (the workflow's `refusal`) -> its HTTP status, as the ledger defines them.
_REFUSALS: dict[str, int] = {
    error.code: error.status_code
    for error in (RefundNotAllowed, NotFound, Conflict, ValidationFailed)
}


def _unavailable(detail: str) -> ApiError:
    return ApiError(
        503,
        "billing_unavailable",
        f"{detail}; retry with the same {HEADER} (it never refunds twice)",
        headers={"Retry-After": "1"},
    )


@router.post(
    "/v1/accounts/{account_id}/refunds",
    status_code=202,
    response_model=RefundOut,
    responses={**MUTATING, **R503},
    summary="Refund paid balance (all refundable when amount_paisa is omitted)",
    description=f"`{HEADER}` is required: the refund is derived from it, so a retry after any "
    "failure (a 503 included) returns the same refund and never debits twice.",
)
async def create_refund(
    account_id: AccountIdPath,
    body: RefundCreate,
    who: Support,
    factory: SessionDep,
    state: StateDep,
    idempotency_key: IdempotencyKey,
) -> RefundOut | JSONResponse:
    ensure_account_access(who, account_id)
    key = (idempotency_key or "").strip()
    if not key:
        raise ApiError(
            400,
            "idempotency_key_required",
            f"refunds require an {HEADER} header (any unique value)",
        )
    await run_db(factory, lambda s: accounts.get_account(s, account_id))  # 404 before any start
    client = state.temporal_client
    if client is None:
        raise _unavailable("refunds need Temporal, which is not connected")
    refund_id = refund_id_for(account_id, key)
    timeout = state.settings.refund_decision_timeout_seconds
    try:
        decided = await asyncio.wait_for(
            _start_and_decide(client, state.settings.task_queue, refund_id, account_id, body),
            timeout,
        )
    except temporalio.client.WorkflowUpdateFailedError as exc:
        # The validator: this refund id (this key) was used for another amount.
        raise Conflict(f"{HEADER} {key!r} was already used for another refund") from exc
    except (
        TimeoutError,
        temporalio.service.RPCError,
        temporalio.client.WorkflowUpdateRPCTimeoutOrCancelledError,
        RuntimeError,  # the lazy client's first connection failed
    ) as exc:
        log.warning("refund %s not decided in time: %r", refund_id, exc)
        raise _unavailable(f"the refund was not confirmed within {timeout:g} s") from exc
    if decided.refusal is not None:
        return problem(
            _REFUSALS.get(decided.refusal, 422),
            decided.refusal,
            decided.failure_reason or "the refund was refused",
        )
    try:
        out = await run_db(factory, lambda s: refund_out(s, refund_id))
    except BillingError as exc:  # decided, yet not in the ledger: should not happen
        raise _unavailable("the refund is not visible yet") from exc
    if body.amount_paisa is not None and out.amount_paisa != body.amount_paisa:
        raise Conflict(f"{HEADER} {key!r} was already used for another refund")
    return out


async def _start_and_decide(
    client: temporalio.client.Client,
    task_queue: str,
    refund_id: str,
    account_id: str,
    body: RefundCreate,
) -> RefundResult:
    """Start the refund's workflow (or use the one running) and wait for its decision; a
    finished one answers with its result."""
    workflow_id = refund_workflow_id(refund_id)
    start: temporalio.client.WithStartWorkflowOperation[object, RefundResult] = (
        temporalio.client.WithStartWorkflowOperation(
            REFUND_WORKFLOW,
            RefundInput(refund_id, account_id, body.amount_paisa),
            id=workflow_id,
            task_queue=task_queue,
            result_type=RefundResult,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A finished refund is read, not run again; one that crashed or was terminated
            # before its decision may be started again.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
    )
    try:
        result: RefundResult = await client.execute_update_with_start_workflow(
            REFUND_DECISION_UPDATE,
            RefundDecisionRequest(body.amount_paisa),
            start_workflow_operation=start,
            id=REFUND_DECISION_UPDATE_ID,
            result_type=RefundResult,
        )
        return result
    except WorkflowAlreadyStartedError:
        finished: RefundResult = await client.get_workflow_handle(
            workflow_id, result_type=RefundResult
        ).result()
        return finished


@router.get(
    "/v1/refunds/{refund_id}",
    response_model=RefundOut,
    responses=COMMON,
    summary="A refund: pending, then completed or failed (a failed refund puts the money back)",
    description="`parts`: the payments it goes back to (newest first, each at most what is "
    "left of that payment) and a `payout` for paid balance that came without a gateway "
    "payment. `completed` when any part was processed: a failed part's amount is back in "
    "the balance (a `refund_reversal`) and the part shows `failed`; `failed` when all failed.",
)
async def get_refund(
    refund_id: Annotated[str, Path(min_length=1, max_length=64)],
    _: Support,
    factory: SessionDep,
) -> RefundOut:
    return await run_db(factory, lambda s: refund_out(s, refund_id))


def refund_out(session: Session, refund_id: str) -> RefundOut:
    """The refund with its parts (`ledger.refund_parts`)."""
    out = RefundOut.model_validate(refunds.get_refund(session, refund_id))
    out.parts = [
        RefundPartOut.model_validate(part, from_attributes=True)
        for part in refund_parts.parts(session, refund_id)
    ]
    return out


@router.put(
    "/v1/accounts/{account_id}/payout-fund-account",
    response_model=PayoutAccountOut,
    responses=MUTATING,
    summary="The customer's bank account (a RazorpayX fund account) for refund payouts",
    description="Paid balance that came without a gateway payment (admin top-ups, bank "
    "transfers) is refunded by a payout to this fund account; without one such a refund part "
    "fails and its amount goes back to the balance.",
)
async def set_payout_fund_account(
    account_id: AccountIdPath, body: PayoutAccountIn, who: Support, factory: SessionDep
) -> PayoutAccountOut:
    ensure_account_access(who, account_id)
    fund_account = await run_db(
        factory,
        lambda s: refund_parts.set_payout_fund_account(s, account_id, body.fund_account_id),
    )
    return PayoutAccountOut(account_id=account_id, fund_account_id=fund_account)
