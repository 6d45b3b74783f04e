"""Refunds (support): the paid balance is debited at once as a pending refund, then
`RefundWorkflow` pays it out (or puts it back when the gateway refuses for good)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import Principal, ensure_account_access, require_roles
from api.deps import SessionDep, StateDep, run_db
from api.errors import COMMON, MUTATING, R503
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.notify import balance_changed
from api.refunds.schemas import RefundCreate, RefundOut
from api.schemas import AccountIdPath
from domain.contracts import REFUND_WORKFLOW, refund_workflow_id
from domain.contracts.refunds import RefundInput
from domain.ledger_types import BalanceSnapshot
from ledger import refunds
from ledger.posting import new_id

log = logging.getLogger("api.refunds")
router = APIRouter(tags=["refunds"], route_class=IdempotentRoute)
Support = Annotated[Principal, Depends(require_roles("support"))]


@router.post(
    "/v1/accounts/{account_id}/refunds",
    status_code=202,
    response_model=RefundOut,
    responses={**MUTATING, **R503},
    dependencies=[Depends(idempotency_key_header)],
    summary="Refund paid balance (all refundable when amount_paisa is omitted)",
)
async def create_refund(
    account_id: AccountIdPath,
    body: RefundCreate,
    who: Support,
    factory: SessionDep,
    state: StateDep,
) -> RefundOut:
    ensure_account_access(who, account_id)
    client = state.temporal_client
    if client is None:
        from api.errors import ApiError

        raise ApiError(503, "temporal_unavailable", "refunds need Temporal")
    refund_id = new_id("ref")

    def work(session: Session) -> tuple[RefundOut, BalanceSnapshot]:
        refund, balance = refunds.start_refund(
            session, refund_id=refund_id, account_id=account_id, amount_paisa=body.amount_paisa
        )
        session.flush()
        session.refresh(refund)
        return RefundOut.model_validate(refund), balance

    refund, snapshot = await run_db(factory, work)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await asyncio.wait_for(
            client.start_workflow(
                REFUND_WORKFLOW,
                RefundInput(refund.id, account_id, refund.amount_paisa),
                id=refund_workflow_id(refund.id),
                task_queue=state.settings.task_queue,
            ),
            15.0,
        )
    await balance_changed(state, snapshot)
    return refund


@router.get(
    "/v1/refunds/{refund_id}",
    response_model=RefundOut,
    responses=COMMON,
    summary="A refund: pending, then completed or failed (a failed refund puts the money back)",
)
async def get_refund(
    refund_id: Annotated[str, Path(min_length=1, max_length=64)],
    _: Support,
    factory: SessionDep,
) -> RefundOut:
    return await run_db(
        factory, lambda s: RefundOut.model_validate(refunds.get_refund(s, refund_id))
    )
