"""The Billing page's **Refunds** section: the account's latest refunds and where each part
went (back to a card payment, or a bank payout), read by `static/refunds.js`. Support starts
refunds through the API (`POST /v1/accounts/{id}/refunds`); customers only see them here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.dashboard import auth
from api.dashboard.views import local_label
from api.deps import BillingState
from db.session import run_in_transaction
from ledger import refund_parts

router = APIRouter(include_in_schema=False)
RECENT = 10


@router.get("/dashboard/api/refunds")
async def recent_refunds(request: Request) -> Response:
    state: BillingState = request.app.state.billing
    signed_in = auth.read(request)

    def load(session: Session) -> dict[str, Any] | None:
        if signed_in is None or not auth.still_valid(session, signed_in):
            return None
        return {
            "refunds": [
                {
                    "id": refund.id,
                    "amount_paisa": refund.amount_paisa,
                    "status": refund.status,
                    "created_label": local_label(refund.created_at),
                    "failure_reason": refund.failure_reason,
                    "parts": [
                        {
                            "part_no": part.part_no,
                            "kind": part.kind,
                            "payment_id": part.payment_id,
                            "amount_paisa": part.amount_paisa,
                            "status": part.status,
                            "gateway_reference": part.gateway_reference,
                        }
                        for part in parts
                    ],
                }
                for refund, parts in refund_parts.recent_refunds(
                    session, signed_in.account_id, RECENT
                )
            ]
        }

    data = await run_in_threadpool(run_in_transaction, state.session_factory, load)
    if data is None:
        raise HTTPException(401, "sign in first")
    return JSONResponse(data, headers={"Cache-Control": "no-store"})
