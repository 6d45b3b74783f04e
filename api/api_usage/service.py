"""The osmAPI hot path: ledger.api_requests on the API's async pool (db.async_pool), falling
back to a Session on a worker thread when the pool is off or an account needs housekeeping."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.responses import Response
from pydantic import BaseModel

from api.api_usage.schemas import ApiUsageIn, ApiUsageItemOut, ApiUsageOut, ItemError
from api.deps import BillingState, run_db
from api.metrics import record_charge
from api.notify import alerts_recorded, recharges_recorded
from api.schemas import BalanceOut
from db.async_pool import run_in_async_transaction
from domain.ledger_types import AuthorizeDecision
from ledger import api_requests
from ledger.api_charge_types import (
    AccountAfter,
    ApiCharge,
    ApiChargeError,
    ApiChargeResult,
    ApiUsage,
    NeedsSession,
)
from ledger.balances import BalanceSummary


def usage_of(body: ApiUsageIn) -> ApiUsage:
    return ApiUsage(
        body.request_id, body.account_id, body.sku, body.input_tokens, body.output_tokens
    )


async def authorize(state: BillingState, account_id: str) -> AuthorizeDecision:
    if state.hot_pool is not None:
        try:
            async with state.hot_pool.connection() as conn:
                return await api_requests.authorize_api_request_async(conn, account_id=account_id)
        except NeedsSession:
            pass  # settle it through the Session path (housekeeping is a write), then answer
    return await run_db(
        state.session_factory,
        lambda s: api_requests.authorize_api_request(s, account_id=account_id),
    )


async def charge(state: BillingState, items: Sequence[ApiUsage]) -> ApiChargeResult:
    """Charge the requests (one transaction), then count them and hand the low-balance
    crossings they recorded (if any) to the account workflow."""
    result: ApiChargeResult | None = None
    if state.hot_pool is not None:
        try:
            result = await run_in_async_transaction(
                state.hot_pool, lambda conn: api_requests.charge_api_usage_async(conn, items)
            )
        except NeedsSession:
            result = None
    if result is None:
        result = await run_db(
            state.session_factory, lambda s: api_requests.charge_api_usage_batch(s, items)
        )
    for item in result.items:
        if isinstance(item, ApiCharge) and not item.replayed and item.total_paisa > 0:
            record_charge("api", item.total_paisa)
    await alerts_recorded(state, result.alerts)
    await recharges_recorded(state, sorted({account for account, _, _ in result.recharges}))
    return result


def json(model: BaseModel) -> Response:
    """The model as the answer, serialized once: the route's response_model documents it, and
    handing FastAPI the model would validate it all over again (a thousand items a batch)."""
    return Response(model.model_dump_json(), media_type="application/json")


def balance_out(after: AccountAfter) -> BalanceOut:
    return BalanceOut.of(BalanceSummary(after.balance, after.month_usage_paisa))


def charge_out(charge: ApiCharge, after: AccountAfter) -> ApiUsageOut:
    return ApiUsageOut(
        request_id=charge.request_id,
        account_id=charge.account_id,
        sku=charge.sku,
        input_tokens=charge.input_tokens,
        output_tokens=charge.output_tokens,
        rate_card_version=charge.rate_card_version,
        provider_total_paisa=charge.provider_total_paisa,
        margin_paisa=charge.margin_paisa,
        total_paisa=charge.total_paisa,
        transaction_id=charge.transaction_id,
        balance=balance_out(after),
    )


def item_out(item: ApiCharge | ApiChargeError) -> ApiUsageItemOut:
    if isinstance(item, ApiChargeError):
        error = item.error
        return ApiUsageItemOut(
            request_id=item.request_id,
            status="failed",
            error=ItemError(status=error.status_code, code=error.code, detail=error.message),
        )
    return ApiUsageItemOut(
        request_id=item.request_id,
        status="replayed" if item.replayed else "charged",
        account_id=item.account_id,
        sku=item.sku,
        rate_card_version=item.rate_card_version,
        provider_total_paisa=item.provider_total_paisa,
        margin_paisa=item.margin_paisa,
        total_paisa=item.total_paisa,
        transaction_id=item.transaction_id,
    )
