"""Rate limits (the `limits` library, in this process's memory):

- per API key, by role (`RATE_LIMIT_CUSTOMER`, `_SUPPORT`, `_ADMIN`, `_ORCHESTRATOR`: `limits`
  strings such as "100/second;2000/minute", empty for none): over the limit, 429 `rate_limited`
  with `Retry-After`. Checked once per request when the key is authenticated (api.auth).
- `POST /login` (the dashboard): after `LOGIN_FAILURES_PER_MINUTE` (10) failed sign-ins in a
  moving minute from one client address, every attempt from it is 429 until the oldest failure
  is a minute old. A successful sign-in does not clear earlier failures. Attempts in flight
  count as failures until they end, so a burst of parallel guesses cannot overshoot the limit.

Behind a reverse proxy the client address is the proxy's unless uvicorn trusts it to pass the
real one (`--forwarded-allow-ips`, docs/operations.md). Each API process counts on its own.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter

from fastapi.responses import HTMLResponse, Response
from limits import RateLimitItem, RateLimitItemPerMinute, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, problem
from core.config import Settings

LOGIN_PATH = "/login"
ROLES = ("customer", "support", "admin", "orchestrator")


def parse_limits(value: str, setting: str) -> list[RateLimitItem]:
    """`limits` items for a setting's value (empty: none); a bad value stops the app."""
    if not value.strip():
        return []
    try:
        return list(parse_many(value))
    except ValueError as exc:
        raise ValueError(f"{setting}={value!r} is not a rate limit like '100/second'") from exc


async def _retry_after(limiter: RateLimiter, item: RateLimitItem, *ids: str) -> int:
    stats = await limiter.get_window_stats(item, *ids)
    return max(1, math.ceil(stats.reset_time - time.time()))


class KeyRateLimits:
    """Requests per API key, by its role."""

    def __init__(self, settings: Settings) -> None:
        self.limiter = FixedWindowRateLimiter(MemoryStorage())
        self.by_role = {
            role: parse_limits(
                getattr(settings, f"rate_limit_{role}"), f"RATE_LIMIT_{role.upper()}"
            )
            for role in ROLES
        }

    async def hit(self, role: str, key_id: str) -> None:
        """Count one request; raise 429 `rate_limited` when the key is over a limit."""
        for item in self.by_role.get(role, ()):
            if not await self.limiter.hit(item, "key", key_id):
                retry_after = await _retry_after(self.limiter, item, "key", key_id)
                raise ApiError(
                    429,
                    "rate_limited",
                    f"this API key is limited to {item}; retry after {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )


class LoginThrottle:
    """Pure ASGI middleware: failed `POST /login` (answered 401) per client address."""

    def __init__(self, app: ASGIApp, failures_per_minute: int) -> None:
        self.app = app
        self.item = RateLimitItemPerMinute(failures_per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.in_flight: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == LOGIN_PATH
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        self.in_flight[address] += 1
        try:
            pending = self.in_flight[address]
            if not await self.limiter.test(self.item, "login", address, cost=pending):
                retry_after = await _retry_after(self.limiter, self.item, "login", address)
                await _too_many(scope, retry_after)(scope, receive, send)
                return
            status = 0

            async def watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            await self.app(scope, receive, watch)
            if status == 401:
                await self.limiter.hit(self.item, "login", address)
        finally:
            self.in_flight[address] -= 1
            if not self.in_flight[address]:
                del self.in_flight[address]


def _too_many(scope: Scope, retry_after: int) -> Response:
    detail = f"too many failed sign-ins from your address; try again in {retry_after} s"
    headers = {"Retry-After": str(retry_after)}
    accept = dict(scope.get("headers", ())).get(b"accept", b"")
    if b"text/html" in accept:  # a browser's form post: a page, not JSON
        page = (
            "<!doctype html><title>Too many sign-in attempts</title>"
            f"<p>{html.escape(detail.capitalize())}.</p><p><a href='/login'>Sign in</a></p>"
        )
        return HTMLResponse(page, status_code=429, headers=headers)
    return problem(429, "rate_limited", detail, headers=headers)
