"""API keys: `Authorization: Bearer <key>`, stored as SHA-256 hashes (ledger.api_keys).

Roles (`ledger.api_keys.ROLES`): `customer` (bound to one account), `orchestrator`, `support`,
`admin`. `admin` may do everything. `ADMIN_API_KEY` from the environment is an admin key
accepted from the start.
No or bad key: 401 `unauthorized`; a role that may not call the endpoint: 403 `forbidden`; a
customer asking about another account: 404 `not_found` (its existence is not revealed); a key
over its role's rate limit: 429 `rate_limited` (api.rate_limits). `authenticate` does it once
per request, before any idempotency claim (api.idempotency).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.rate_limits import KeyRateLimits

if TYPE_CHECKING:
    from api.deps import BillingState
from ledger import api_keys
from ledger.api_keys import LiveKey
from ledger.errors import NotFound

ENV_ADMIN_KEY_ID = "admin-env"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An osmTalk billing API key: `Authorization: Bearer osk_...`",
)


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    account_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _lookup(state: BillingState, secret: str) -> LiveKey | None:
    with state.session_factory() as session:
        key = api_keys.resolve_api_key(session, secret)
        return None if key is None else LiveKey(key.id, key.role, key.account_id)


async def _principal_of(state: BillingState, secret: str) -> Principal | None:
    """The live key behind `secret`: from this process's cache (api.key_cache) or PostgreSQL."""
    key_hash = api_keys.hash_api_key(secret)
    cache = state.key_cache
    key = cache.get(key_hash)
    if key is None:
        epoch = cache.epoch  # taken before the read: a change during it voids the answer
        if state.hot_pool is not None:
            async with state.hot_pool.connection() as conn:
                key = await api_keys.resolve_api_key_async(conn, secret)
        else:
            key = await anyio.to_thread.run_sync(_lookup, state, secret)
        if key is None:
            return None
        cache.put(key_hash, key, epoch)
    return Principal(key.id, key.role, key.account_id)


async def authenticate(request: Request) -> Principal:
    """The caller's principal (401 `unauthorized` without a valid key), counted against its
    role's rate limit (429 `rate_limited`, api.rate_limits). Once per request: the answer is
    kept on `request.state`, so `IdempotentRoute` can authenticate before it claims a key and the
    route's dependencies reuse it."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    credentials = await bearer_scheme(request)
    if credentials is None or not credentials.credentials:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    secret = credentials.credentials.strip()
    if len(secret) > 512:
        raise _unauthorized("the API key is not valid")
    admin_key = request.app.state.billing.settings.admin_api_key
    principal: Principal | None
    if admin_key and hmac.compare_digest(
        hashlib.sha256(secret.encode()).digest(), hashlib.sha256(admin_key.encode()).digest()
    ):
        principal = Principal(key_id=ENV_ADMIN_KEY_ID, role="admin")
    else:
        principal = await _principal_of(request.app.state.billing, secret)
    if principal is None:
        raise _unauthorized("the API key is not valid or was revoked")
    request.state.principal = principal
    limits: KeyRateLimits | None = getattr(request.app.state, "key_rate_limits", None)
    if limits is not None:
        await limits.hit(principal.role, principal.key_id)
    return principal


async def get_principal(
    request: Request,
    # Declares the bearer scheme in OpenAPI; `authenticate` reads the header itself.
    _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
    return await authenticate(request)


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting the given roles (and admin)."""
    allowed = frozenset(roles) | {"admin"}

    async def dependency(principal: Principal = Depends(get_principal)) -> Principal:
        if principal.role not in allowed:
            raise ApiError(
                403,
                "forbidden",
                f"a {principal.role} key may not do this (needs {' or '.join(sorted(allowed))})",
            )
        return principal

    return dependency


def ensure_account_access(principal: Principal, account_id: str) -> None:
    """A customer key sees only its own account; anything else looks like it does not exist."""
    if principal.role == "customer" and principal.account_id != account_id:
        raise NotFound(f"account {account_id} not found")
