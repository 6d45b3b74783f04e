"""The Billing page's money in: **Add credits** (a checkout opened in a new window: the
stand-in's hosted page in development, Razorpay's hosted checkout otherwise), the page the
gateway sends the browser back to, printable receipts, and the auto-recharge control.

The checkout itself is `api.payments.service.create_checkout`, the same as the API's; the page
learns that the payment landed from the checkout's status and the live balance stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from adapters.payments.razorpay_checkout import checkout_launch
from api.dashboard import auth
from api.dashboard.views import local_label
from api.deps import BillingState
from api.errors import ApiError
from api.notify import balance_changed
from api.payments import service
from db.payment_models import Checkout
from db.session import run_in_transaction
from domain.money import format_inr
from ledger import accounts, auto_recharge, payments
from ledger.errors import BillingError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(auth.__file__).parent / "templates")
templates.env.filters["inr"] = format_inr
PRESETS_PAISA = (50_000, 100_000, 200_000)


def _state(request: Request) -> BillingState:
    state: BillingState = request.app.state.billing
    return state


async def _db(request: Request, work: Any) -> Any:
    return await run_in_threadpool(run_in_transaction, _state(request).session_factory, work)


async def _signed_in(request: Request, *, mutating: bool = False) -> auth.DashboardSession:
    signed_in = auth.read(request)
    if signed_in is None or not await _db(request, lambda s: auth.still_valid(s, signed_in)):
        raise HTTPException(401, "sign in first")
    if mutating and not auth.csrf_ok(request, signed_in):
        raise HTTPException(403, "missing or wrong CSRF token")
    return signed_in


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    body = {"status": status, "code": code, "detail": detail, "title": code.replace("_", " ")}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise HTTPException(422, "send a JSON object") from exc
    if not isinstance(body, dict):
        raise HTTPException(422, "send a JSON object")
    return body


def _checkout_view(checkout: Checkout) -> dict[str, Any]:
    return {
        "checkout_id": checkout.id,
        "order_id": checkout.order_id,
        "amount_paisa": checkout.amount_paisa,
        "status": checkout.status,
        "failure_reason": checkout.failure_reason,
        "receipt_url": service.receipt_url(checkout),
    }


async def _own_checkout(request: Request, account_id: str, checkout_id: str) -> Checkout:
    def load(session: Session) -> Checkout | None:
        checkout = payments.get_checkout(session, checkout_id)
        return checkout if checkout.account_id == account_id else None

    try:
        checkout = await _db(request, load)
    except BillingError:
        checkout = None
    if checkout is None:
        raise HTTPException(404, "no such checkout")
    return checkout  # type: ignore[no-any-return]


# --- Add credits ---------------------------------------------------------------------------


@router.get("/dashboard/api/payments")
async def payment_settings(request: Request) -> Response:
    """What the Add credits and auto-recharge controls show."""
    signed_in = await _signed_in(request)
    settings = _state(request).settings

    def load(session: Session) -> dict[str, Any]:
        account = accounts.get_account(session, signed_in.account_id)
        current = auto_recharge.settings_of(session, account)
        return {
            "enabled": current.enabled,
            "threshold_paisa": current.threshold_paisa,
            "amount_paisa": current.amount_paisa,
            "consecutive_failures": current.consecutive_failures,
            "has_saved_method": current.method is not None,
        }

    return JSONResponse(
        {
            "presets_paisa": list(PRESETS_PAISA),
            "min_paisa": settings.checkout_min_paisa,
            "max_paisa": settings.checkout_max_paisa,
            "configured": _state(request).razorpay is not None,
            "auto_recharge": await _db(request, load),
        }
    )


@router.post("/dashboard/api/checkouts")
async def create_checkout(request: Request) -> Response:
    signed_in = await _signed_in(request, mutating=True)
    body = await _json_body(request)
    amount, save = body.get("amount_paisa"), body.get("save_method", False)
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(save, bool):
        return _problem(422, "validation_error", "amount_paisa must be a whole number of paisa")
    state = _state(request)
    try:
        created = await service.create_checkout(state, signed_in.account_id, amount, save)
    except BillingError as exc:
        return _problem(exc.status_code, exc.code, exc.message)
    except ApiError as exc:
        return _problem(exc.status_code, exc.code, exc.detail)
    assert created.order_id is not None
    callback = str(request.url_for("checkout_done", checkout_id=created.checkout_id))
    launch = checkout_launch(
        state.settings, order_id=created.order_id, callback_url=callback, save_method=save
    )
    return JSONResponse(
        {
            **created.model_dump(mode="json"),
            "launch": {"method": launch.method, "url": launch.url, "fields": launch.fields},
        },
        status_code=201,
    )


@router.get("/dashboard/api/checkouts/{checkout_id}")
async def checkout_status(request: Request, checkout_id: str) -> Response:
    signed_in = await _signed_in(request)
    return JSONResponse(
        _checkout_view(await _own_checkout(request, signed_in.account_id, checkout_id))
    )


@router.api_route("/billing/checkouts/{checkout_id}/done", methods=["GET", "POST"])
async def checkout_done(request: Request, checkout_id: str) -> Response:
    """Where the gateway sends the browser back (Razorpay POSTs its callback fields; the
    stand-in redirects with them). The webhook, not this page, credits the payment."""
    signed_in = auth.read(request)
    checkout = None
    if signed_in is not None:
        try:
            checkout = await _own_checkout(request, signed_in.account_id, checkout_id)
        except HTTPException:
            checkout = None
    failed = "error[code]" in request.query_params
    if request.method == "POST":
        failed = failed or "error[code]" in await request.form()
    return templates.TemplateResponse(
        request,
        "checkout_done.html",
        {"checkout": _checkout_view(checkout) if checkout else None, "failed": failed},
    )


@router.get("/billing/receipts/{checkout_id}")
async def receipt(request: Request, checkout_id: str) -> Response:
    signed_in = auth.read(request)
    if signed_in is None:
        return Response(status_code=303, headers={"Location": "/login"})
    checkout = await _own_checkout(request, signed_in.account_id, checkout_id)
    if checkout.status != "paid":
        raise HTTPException(404, "this checkout is not paid")

    def load(session: Session) -> dict[str, Any]:
        payment = payments.payment_of_checkout(session, checkout)
        account = accounts.get_account(session, checkout.account_id)
        return {
            "checkout": checkout,
            "payment": payment,
            "account": account,
            "paid_label": local_label(checkout.paid_at) if checkout.paid_at else "",
            "method": (payment.method if payment else None) or "card",
        }

    return templates.TemplateResponse(request, "receipt.html", await _db(request, load))


# --- auto-recharge -------------------------------------------------------------------------


@router.post("/dashboard/api/auto-recharge")
async def set_auto_recharge(request: Request) -> Response:
    signed_in = await _signed_in(request, mutating=True)
    body = await _json_body(request)
    enabled = body.get("enabled")
    threshold, amount = body.get("threshold_paisa"), body.get("amount_paisa")
    numbers_ok = all(
        v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (threshold, amount)
    )
    if not isinstance(enabled, bool) or not numbers_ok:
        return _problem(422, "validation_error", "enabled, threshold_paisa and amount_paisa")
    state = _state(request)
    try:
        current, snapshot = await _db(
            request,
            lambda s: auto_recharge.configure(
                s,
                signed_in.account_id,
                enabled=enabled,
                threshold_paisa=threshold,
                amount_paisa=amount,
                min_amount_paisa=state.settings.checkout_min_paisa,
                max_amount_paisa=state.settings.checkout_max_paisa,
            ),
        )
    except BillingError as exc:
        return _problem(exc.status_code, exc.code, exc.message)
    await balance_changed(state, snapshot)
    return JSONResponse(
        {
            "enabled": current.enabled,
            "threshold_paisa": current.threshold_paisa,
            "amount_paisa": current.amount_paisa,
            "consecutive_failures": current.consecutive_failures,
            "has_saved_method": current.method is not None,
        }
    )
