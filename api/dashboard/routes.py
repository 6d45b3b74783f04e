"""The customer dashboard: sign-in with an API key, the Billing and Calls pages, their JSON and
a server-sent event stream that pushes changed calls and balances while a page is open.

Data comes straight from the ledger modules through the app's session factory
(`app.state.billing.session_factory` from api.deps, else `app.state.session_factory`, else
`DATABASE_URL`). A coupon redeemed here is committed by `ledger.coupons.redeem_coupon` (a credit
re-arms the low-balance alert in the ledger itself: nothing to report).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.dashboard import auth, views
from core.config import get_settings
from db.models import Call
from db.session import get_sessionmaker, run_in_transaction
from domain.contracts import CallState
from domain.contracts.calls import CallBreakdown, CallStatus
from domain.money import format_inr
from ledger import accounts, api_keys, coupons
from ledger import calls as ledger_calls
from ledger.errors import BillingError
from ledger.posting import utcnow
from orchestrator_client import BillingClient

log = logging.getLogger(__name__)
T = TypeVar("T")

HERE = Path(__file__).parent
STATIC_FILES = {
    "dashboard.css": "text/css",
    "money.js": "text/javascript",
    "common.js": "text/javascript",
    "billing.js": "text/javascript",
    "calls.js": "text/javascript",
    "payments.js": "text/javascript",
    "payments.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
PAGE_SIZE = 20
CALLS_PAGE_SIZE = 50
POLL_SECONDS = 0.5
RUNNING_COST_EVERY = 4  # polls between Temporal queries for the running cost of active calls
MAX_RUNNING_QUERIES = 20
REVALIDATE_EVERY = 10  # polls between re-checks that the signed-in key is still valid
HEARTBEAT_SECONDS = 15.0
RECENT_WINDOW = timedelta(seconds=10)  # re-read rows this far back: commits land out of order

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["inr"] = format_inr

router = APIRouter(include_in_schema=False)


# --- plumbing --------------------------------------------------------------------------------


def _app_state(request: Request, name: str) -> Any:
    """From the API's `app.state.billing` (api.deps.BillingState), else `app.state.<name>`."""
    billing = getattr(request.app.state, "billing", None)
    value = getattr(billing, name, None) if billing is not None else None
    return value if value is not None else getattr(request.app.state, name, None)


def _factory(request: Request) -> sessionmaker[Session]:
    factory = _app_state(request, "session_factory")
    if factory is not None:
        return factory  # type: ignore[no-any-return]
    url = _app_state(request, "database_url") or get_settings().database_url
    if not url:
        raise HTTPException(503, "the dashboard has no database configured")
    return get_sessionmaker(url)


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    factory = _factory(request)
    return await run_in_threadpool(run_in_transaction, factory, work)


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": "about:blank",
            "title": code.replace("_", " "),
            "status": status,
            "code": code,
            "detail": detail,
        },
        status_code=status,
        media_type="application/problem+json",
    )


async def _signed_in(request: Request) -> auth.DashboardSession | None:
    signed_in = auth.read(request)
    if signed_in is None:
        return None
    valid = await _in_transaction(request, lambda s: auth.still_valid(s, signed_in))
    return signed_in if valid else None


def _to_login() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    auth.clear(response)
    return response


def _json_dump(value: Any) -> str:
    """JSON safe to embed in a <script type="application/json"> block."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


# --- sign-in ---------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await _signed_in(request) is not None:
        return RedirectResponse("/billing", status_code=303)
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    secret = str(form.get("api_key") or "").strip()
    error = None
    key = None
    if not secret:
        error = "Enter your API key."
    else:
        key = await _in_transaction(request, lambda s: api_keys.resolve_api_key(s, secret))
        if key is None:
            error = "That API key is not valid (or has been revoked)."
        elif key.role != "customer" or key.account_id is None:
            error = "Only customer API keys can sign in to the dashboard."
    if error is not None or key is None:
        return templates.TemplateResponse(request, "login.html", {"error": error}, status_code=401)
    response = RedirectResponse("/billing", status_code=303)
    auth.issue(response, request, key)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    signed_in = auth.read(request)
    form = await request.form()
    if signed_in is not None and str(form.get("csrf") or "") != signed_in.csrf:
        return _problem(403, "forbidden", "missing or wrong CSRF token")
    return _to_login()


@router.get("/dashboard")
async def dashboard_home() -> Response:
    return RedirectResponse("/billing", status_code=303)


@router.get("/dashboard/static/{name}")
async def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404)
    return FileResponse(
        HERE / "static" / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )


# --- pages -----------------------------------------------------------------------------------


def _account_name(session: Session, account_id: str) -> str:
    account = accounts.find_account(session, account_id)
    return account.name if account is not None else account_id


@router.get("/billing")
async def billing_page(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _to_login()
    account_id = signed_in.account_id

    def load(session: Session) -> dict[str, Any]:
        return {
            "account_name": _account_name(session, account_id),
            **views.summary_payload(session, account_id),
            "transactions": views.transactions_page(session, account_id, None, PAGE_SIZE),
        }

    data = await _in_transaction(request, load)
    return templates.TemplateResponse(
        request,
        "billing.html",
        {
            "page": "billing",
            "csrf": signed_in.csrf,
            "account_id": account_id,
            "account_name": data["account_name"],
            "balance": data["balance"],
            "daily": data["daily"],
            "transactions": data["transactions"],
            "initial_json": _json_dump(data),
        },
    )


@router.get("/calls")
async def calls_page(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _to_login()
    account_id = signed_in.account_id

    def load(session: Session) -> dict[str, Any]:
        return {
            "account_name": _account_name(session, account_id),
            "balance": views.summary_payload(session, account_id)["balance"],
            "calls": views.calls_page(session, account_id, None, CALLS_PAGE_SIZE),
        }

    data = await _in_transaction(request, load)
    return templates.TemplateResponse(
        request,
        "calls.html",
        {
            "page": "calls",
            "csrf": signed_in.csrf,
            "account_id": account_id,
            "account_name": data["account_name"],
            "balance": data["balance"],
            "initial_json": _json_dump(data),
        },
    )


# --- JSON for the pages ----------------------------------------------------------------------


async def _api_session(request: Request, *, mutating: bool = False) -> auth.DashboardSession:
    signed_in = await _signed_in(request)
    if signed_in is None:
        raise HTTPException(401, "sign in first")
    if mutating and not auth.csrf_ok(request, signed_in):
        raise HTTPException(403, "missing or wrong CSRF token")
    return signed_in


@router.get("/dashboard/api/summary")
async def summary(request: Request) -> Response:
    signed_in = await _api_session(request)
    data = await _in_transaction(request, lambda s: views.summary_payload(s, signed_in.account_id))
    return JSONResponse(data)


@router.get("/dashboard/api/transactions")
async def transactions(
    request: Request, before: int | None = None, limit: int = PAGE_SIZE
) -> Response:
    signed_in = await _api_session(request)
    limit = max(1, min(limit, 100))
    data = await _in_transaction(
        request, lambda s: views.transactions_page(s, signed_in.account_id, before, limit)
    )
    return JSONResponse(data)


@router.get("/dashboard/api/calls")
async def calls(
    request: Request,
    before_created_at: datetime | None = None,
    before_call_id: str | None = None,
    limit: int = CALLS_PAGE_SIZE,
) -> Response:
    signed_in = await _api_session(request)
    limit = max(1, min(limit, 200))
    before = (
        (before_created_at, before_call_id)
        if before_created_at is not None and before_call_id is not None
        else None
    )
    data = await _in_transaction(
        request, lambda s: views.calls_page(s, signed_in.account_id, before, limit)
    )
    return JSONResponse(data)


async def _running_status(request: Request, call_id: str) -> CallStatus | None:
    """The workflow's `status` query (usage so far and running breakdown), best effort."""
    client = _app_state(request, "temporal_client")
    if client is None:
        return None
    try:
        return await asyncio.wait_for(BillingClient(client).status(call_id), timeout=2.0)
    except Exception:  # the call may just have ended, or the worker is busy: no running cost
        return None


@router.get("/dashboard/api/calls/{call_id}")
async def call_detail(request: Request, call_id: str) -> Response:
    signed_in = await _api_session(request)

    def load(session: Session) -> Call | None:
        call = ledger_calls.find_call(session, call_id)
        return call if call is not None and call.account_id == signed_in.account_id else None

    call = await _in_transaction(request, load)
    if call is None:
        return _problem(404, "not_found", f"call {call_id} not found")
    running = await _running_status(request, call_id) if call.status == CallState.ACTIVE else None
    data = await _in_transaction(request, lambda s: views.call_detail(s, call, running=running))
    return JSONResponse(data)


async def _coupon_code(request: Request) -> str:
    try:
        body = await request.json()
    except ValueError as exc:
        raise HTTPException(422, "send JSON {code}") from exc
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise HTTPException(422, "enter a coupon code")
    return code.strip()


@router.post("/dashboard/api/coupons/preview")
async def coupon_preview(request: Request) -> Response:
    signed_in = await _api_session(request, mutating=True)
    code = await _coupon_code(request)
    try:
        coupon = await _in_transaction(
            request,
            lambda s: coupons.preview_coupon(s, account_id=signed_in.account_id, code=code),
        )
    except BillingError as exc:
        return _problem(exc.status_code, exc.code, exc.message)
    return JSONResponse(
        {
            "code": coupon.code,
            "bonus_paisa": coupon.bonus_paisa,
            "promo_expires_at": views.iso(coupon.promo_expires_at),
        }
    )


@router.post("/dashboard/api/coupons/redeem")
async def coupon_redeem(request: Request) -> Response:
    signed_in = await _api_session(request, mutating=True)
    code = await _coupon_code(request)
    account_id = signed_in.account_id

    def redeem(session: Session) -> Any:
        transaction, snapshot = coupons.redeem_coupon(session, account_id=account_id, code=code)
        return transaction, snapshot, views.summary_payload(session, account_id, balance=snapshot)

    try:
        transaction, _, data = await _in_transaction(request, redeem)
    except BillingError as exc:
        return _problem(exc.status_code, exc.code, exc.message)
    return JSONResponse(
        {
            "bonus_paisa": transaction.amount_paisa,
            "transaction": views.transaction_view(transaction),
            **data,
        }
    )


# --- live updates ----------------------------------------------------------------------------


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class _SignedOut(Exception):
    """The key behind a live stream was revoked: end the stream."""


class _Watcher:
    """Per connection: what the page was last told, so only changes are pushed."""

    def __init__(self, signed_in: auth.DashboardSession) -> None:
        self.signed_in = signed_in
        self.account_id = signed_in.account_id
        self.polls = 0
        self.balance_key: tuple[int, int, int] | None = None
        self.sent: dict[str, tuple[Any, ...]] = {}
        self.cursor: datetime | None = None

    def poll(self, session: Session, first: bool) -> tuple[dict[str, Any] | None, list[Call]]:
        self.polls += 1
        if self.polls % REVALIDATE_EVERY == 0 and not auth.still_valid(session, self.signed_in):
            raise _SignedOut
        account = accounts.find_account(session, self.account_id)
        balance = None
        if account is not None:
            key = (account.version, account.reserved_paisa, account.paid_paisa)
            if key != self.balance_key:
                self.balance_key = key
                balance = views.summary_payload(session, self.account_id)
        if first:
            rows = ledger_calls.list_calls(session, self.account_id, before=None, limit=100)
        else:
            assert self.cursor is not None
            rows = ledger_calls.calls_updated_since(
                session, self.account_id, self.cursor - RECENT_WINDOW, limit=500
            )
        newest = max((c.updated_at for c in rows), default=None)
        if newest is not None and (self.cursor is None or newest > self.cursor):
            self.cursor = newest
        if self.cursor is None:
            self.cursor = utcnow()
        return balance, rows


@router.get("/dashboard/events")
async def events(request: Request) -> Response:
    """Server-sent events: `balance` when the account changes, `call` for each new or changed
    call row (polling the calls table every half second for this account)."""
    signed_in = await _signed_in(request)
    if signed_in is None:
        raise HTTPException(401, "sign in first")
    watcher = _Watcher(signed_in)
    factory = _factory(request)

    running: dict[str, CallBreakdown] = {}  # call_id -> running breakdown from Temporal

    async def refresh_running(call_ids: list[str]) -> None:
        """Query the active calls' workflows concurrently, off the event loop's critical path,
        so a slow or absent Temporal never delays the stream."""
        results = await asyncio.gather(*(_running_status(request, cid) for cid in call_ids))
        for call_id, status in zip(call_ids, results, strict=True):
            if status is not None:
                running[call_id] = status.breakdown

    async def stream() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        tick = 0
        idle = 0.0
        querying: asyncio.Task[None] | None = None
        try:
            while True:
                if await request.is_disconnected():
                    return
                first = tick == 0

                def poll(session: Session, first: bool = first) -> Any:
                    return watcher.poll(session, first)

                try:
                    balance, rows = await run_in_threadpool(run_in_transaction, factory, poll)
                except _SignedOut:
                    yield _sse("signed_out", {})
                    return
                except Exception:
                    log.warning("dashboard event poll failed", exc_info=True)
                    balance, rows = None, []
                if balance is not None:
                    yield _sse("balance", balance)
                active = [c.call_id for c in rows if c.status == CallState.ACTIVE]
                active = active[:MAX_RUNNING_QUERIES]
                if (
                    active
                    and tick % RUNNING_COST_EVERY == 0
                    and (querying is None or querying.done())
                ):
                    querying = asyncio.create_task(refresh_running(active))
                now = utcnow()
                for call in reversed(rows) if first else rows:
                    row = views.call_row(call, now, running.get(call.call_id))
                    fingerprint = (row["status"], row["updated_at"], row["cost_paisa"])
                    if watcher.sent.get(call.call_id) != fingerprint:
                        watcher.sent[call.call_id] = fingerprint
                        yield _sse("call", row)
                        idle = 0.0
                    if call.status != CallState.ACTIVE:
                        running.pop(call.call_id, None)
                tick += 1
                idle += POLL_SECONDS
                if idle >= HEARTBEAT_SECONDS:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)
        finally:
            if querying is not None:
                querying.cancel()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
