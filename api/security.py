"""The API's edge, installed by `install_security(app, settings)` (contract §4, "Edges anyone can
reach"; docs/api.md "Edges"):

- `SecurityHeaders`: every answer carries `X-Content-Type-Options: nosniff`,
  `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and a `Content-Security-Policy` with
  `frame-ancestors 'none'` (the dashboard's pages load only their own scripts and styles; the
  Swagger UI and ReDoc pages, which load theirs from a CDN, get `frame-ancestors 'none'` alone);
  in production also `Strict-Transport-Security`.
- `api.request_guard.RequestGuard`: 413 over 1 MiB, 422 for text PostgreSQL cannot store.
- `api.rate_limits.LoginThrottle` on `POST /login`; the per-key limits (`KeyRateLimits`) are
  kept on `app.state.key_rate_limits` for api.auth.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.payments.razorpay_checkout import RAZORPAY_HOSTED_CHECKOUT
from api.openapi import declare_edge_constraints
from api.rate_limits import KeyRateLimits, LoginThrottle
from api.request_guard import RequestGuard
from core.config import Settings

# "Add credits" posts a form to Razorpay's hosted checkout (in a new window).
_CHECKOUT = urlsplit(RAZORPAY_HOSTED_CHECKOUT)
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        f"form-action 'self' {_CHECKOUT.scheme}://{_CHECKOUT.netloc}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
DOCS_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'"
HSTS = "max-age=31536000"


class SecurityHeaders:
    """Pure ASGI middleware adding the headers above to every HTTP answer that lacks them."""

    def __init__(self, app: ASGIApp, *, docs_paths: frozenset[str], production: bool) -> None:
        self.app = app
        self.docs_paths = docs_paths
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if production:
            common.append((b"strict-transport-security", HSTS.encode()))
        self.headers = [*common, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
        self.docs_headers = [
            *common,
            (b"content-security-policy", DOCS_CONTENT_SECURITY_POLICY.encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope.get("path") in self.docs_paths else self.headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the edge middleware (outermost: security headers, then the guard, then the login
    throttle) and declare what it enforces in the OpenAPI document."""
    app.state.key_rate_limits = KeyRateLimits(settings)
    # add_middleware puts each new one outside the previous ones.
    app.add_middleware(LoginThrottle, failures_per_minute=settings.login_failures_per_minute)
    app.add_middleware(RequestGuard)
    docs = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.add_middleware(
        SecurityHeaders,
        docs_paths=frozenset(path for path in docs if path),
        production=settings.billing_env == "production",
    )
    declare_edge_constraints(app)
