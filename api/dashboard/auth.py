"""The dashboard's sign-in session: a signed cookie (itsdangerous) holding the API key's id and
its account, never the key itself, plus a CSRF token echoed by the page's POSTs. Each request
re-checks the key, so revoking a key signs its sessions out. The cookie is `HttpOnly`,
`SameSite=Lax`, and `Secure` unless this is plain-http development (`secure_cookies`); failed
sign-ins are throttled by api.rate_limits.LoginThrottle."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from core.config import Settings, get_settings
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


def _settings(request: Request) -> Settings:
    """The app's settings (api.deps.BillingState), else the environment's."""
    billing = getattr(request.app.state, "billing", None)
    settings: Settings = getattr(billing, "settings", None) or get_settings()
    return settings


def _serializer(request: Request) -> URLSafeTimedSerializer:
    """Signed with SESSION_SECRET (production refuses to start without one, core.production)."""
    secret = _settings(request).session_secret
    if not secret:
        raise RuntimeError("SESSION_SECRET is not set: no dashboard sessions")
    return URLSafeTimedSerializer(secret, salt="osmtalk-dashboard")


def secure_cookies(request: Request) -> bool:
    """`Secure` always in production (TLS ends at a proxy, so the scheme here says nothing);
    in development only over https, so a plain-http local stack can sign in."""
    return _settings(request).billing_env == "production" or request.url.scheme == "https"


def issue(response: Response, request: Request, key: ApiKey) -> None:
    assert key.account_id is not None
    token = _serializer(request).dumps(
        {"k": key.id, "a": key.account_id, "c": secrets.token_urlsafe(24)}
    )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")


def read(request: Request) -> DashboardSession | None:
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    try:
        data = _serializer(request).loads(token, max_age=MAX_AGE_SECONDS)
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
