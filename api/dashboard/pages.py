"""The dashboard's HTML: sign-in, the Billing and Calls pages (first data rendered into the
page, the rest fetched from `data.py` and kept live by `events.py`) and their static files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from api.dashboard import auth, views
from api.deps import StateDep, run_db
from api.errors import ApiError
from domain.money import format_inr
from domain.periods import Month
from ledger import accounts, api_keys
from ledger.posting import utcnow

HERE = Path(__file__).parent
STATIC_FILES = {
    "dashboard.css": "text/css",
    "money.js": "text/javascript",
    "common.js": "text/javascript",
    "billing.js": "text/javascript",
    "calls.js": "text/javascript",
    "history.js": "text/javascript",
    "payments.js": "text/javascript",
    "refunds.js": "text/javascript",
    "payments.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
PAGE_SIZE = 20
CALLS_PAGE_SIZE = 50

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["inr"] = format_inr

router = APIRouter()


def _to_login() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    auth.clear(response)
    return response


def _json_dump(value: Any) -> str:
    """JSON safe to embed in a <script type="application/json"> block."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


@router.get("/login")
async def login_page(request: Request, signed_in: auth.MaybeSignedIn) -> Response:
    if signed_in is not None:
        return RedirectResponse("/billing", status_code=303)
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
async def login(request: Request, state: StateDep) -> Response:
    form = await request.form()
    secret = str(form.get("api_key") or "").strip()
    error = None
    key = None
    if not secret:
        error = "Enter your API key."
    else:
        key = await run_db(state.session_factory, lambda s: api_keys.resolve_api_key(s, secret))
        if key is None:
            error = "That API key is not valid (or has been revoked)."
        elif key.role != "customer" or key.account_id is None:
            error = "Only customer API keys can sign in to the dashboard."
    if error is not None or key is None:
        return templates.TemplateResponse(request, "login.html", {"error": error}, status_code=401)
    response = RedirectResponse("/billing", status_code=303)
    auth.issue(response, request, state.settings, key)
    return response


@router.post("/logout")
async def logout(request: Request, state: StateDep) -> Response:
    signed_in = auth.read(request, state.settings)
    form = await request.form()
    if signed_in is not None and str(form.get("csrf") or "") != signed_in.csrf:
        raise ApiError(403, "forbidden", "missing or wrong CSRF token")
    return _to_login()


@router.get("/dashboard")
async def dashboard_home() -> Response:
    return RedirectResponse("/billing", status_code=303)


@router.get("/dashboard/static/{name}")
async def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no static file {name}")
    return FileResponse(
        HERE / "static" / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )


def _page(
    request: Request, name: str, signed_in: auth.DashboardSession, data: dict[str, Any]
) -> Response:
    return templates.TemplateResponse(
        request,
        f"{name}.html",
        {
            "page": name,
            "csrf": signed_in.csrf,
            "account_id": signed_in.account_id,
            "account_name": data["account_name"],
            "balance": data["balance"],
            "month": data["month"],
            "data": data,
            "initial_json": _json_dump(data),
        },
    )


def _common(session: Session, account_id: str) -> dict[str, Any]:
    account = accounts.get_account(session, account_id)
    return {
        "account_name": account.name,
        "month": str(Month.of(utcnow())),
        "settings": views.settings_view(account),
        **views.summary_payload(session, account_id),
    }


@router.get("/billing")
async def billing_page(
    request: Request, state: StateDep, signed_in: auth.MaybeSignedIn
) -> Response:
    if signed_in is None:
        return _to_login()
    account_id = signed_in.account_id

    def load(session: Session) -> dict[str, Any]:
        return {
            **_common(session, account_id),
            "transactions": views.transactions_page(session, account_id, None, PAGE_SIZE),
        }

    return _page(request, "billing", signed_in, await run_db(state.session_factory, load))


@router.get("/calls")
async def calls_page(request: Request, state: StateDep, signed_in: auth.MaybeSignedIn) -> Response:
    if signed_in is None:
        return _to_login()
    account_id = signed_in.account_id

    def load(session: Session) -> dict[str, Any]:
        return {
            **_common(session, account_id),
            "calls": views.calls_page(session, account_id, None, CALLS_PAGE_SIZE),
        }

    return _page(request, "calls", signed_in, await run_db(state.session_factory, load))
