"""The dashboard's sign-in session: a signed cookie (itsdangerous, `SESSION_SECRET`) holding
the API key's id and its account, never the key itself, plus a CSRF token echoed by the page's
writes. Each request re-checks the key, so revoking a key signs its sessions out.

Dependencies: `MaybeSignedIn` (pages: None sends the browser to /login), `SignedIn` (the JSON:
401 `unauthorized`), `SignedInWriter` (writes: also the CSRF header, else 403 `forbidden`)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from api.deps import StateDep, run_db
from api.errors import ApiError
from core.config import Settings
from db.models import ApiKey
from ledger import api_keys

COOKIE_NAME = "osmtalk_dashboard"
MAX_AGE_SECONDS = 12 * 3600
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class DashboardSession:
    key_id: str
    account_id: str
    csrf: str


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret, salt="osmtalk-dashboard")


def issue(response: Response, request: Request, settings: Settings, key: ApiKey) -> None:
    assert key.account_id is not None
    token = _serializer(settings).dumps(
        {"k": key.id, "a": key.account_id, "c": secrets.token_urlsafe(24)}
    )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/")


def read(request: Request, settings: Settings | None = None) -> DashboardSession | None:
    """The cookie's session if its signature and age are good (the key is not checked).
    `settings`: the app's (`app.state.billing.settings`) when not given."""
    settings = settings or request.app.state.billing.settings
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    try:
        assert settings is not None
        data = _serializer(settings).loads(token, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    key_id, account_id, csrf = data.get("k"), data.get("a"), data.get("c")
    if not (isinstance(key_id, str) and isinstance(account_id, str) and isinstance(csrf, str)):
        return None
    return DashboardSession(key_id=key_id, account_id=account_id, csrf=csrf)


def still_valid(session: Session, signed_in: DashboardSession) -> bool:
    """The key must still exist, be unrevoked, be a customer key and belong to the account."""
    key = api_keys.find_api_key(session, signed_in.key_id)
    return (
        key is not None
        and key.revoked_at is None
        and key.role == "customer"
        and key.account_id == signed_in.account_id
    )


def csrf_ok(request: Request, signed_in: DashboardSession) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent, signed_in.csrf)


async def maybe_signed_in(request: Request, state: StateDep) -> DashboardSession | None:
    signed_in = read(request, state.settings)
    if signed_in is None:
        return None
    valid = await run_db(state.session_factory, lambda s: still_valid(s, signed_in))
    return signed_in if valid else None


async def signed_in(
    found: Annotated[DashboardSession | None, Depends(maybe_signed_in)],
) -> DashboardSession:
    if found is None:
        raise ApiError(401, "unauthorized", "sign in first")
    return found


async def signed_in_writer(
    request: Request, found: Annotated[DashboardSession, Depends(signed_in)]
) -> DashboardSession:
    if not csrf_ok(request, found):
        raise ApiError(403, "forbidden", "missing or wrong CSRF token")
    return found


MaybeSignedIn = Annotated[DashboardSession | None, Depends(maybe_signed_in)]
SignedIn = Annotated[DashboardSession, Depends(signed_in)]
SignedInWriter = Annotated[DashboardSession, Depends(signed_in_writer)]
