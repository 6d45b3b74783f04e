"""API keys: `Authorization: Bearer <key>`, stored as SHA-256 hashes (ledger.api_keys).

Roles (`ledger.api_keys.ROLES`): `customer` (bound to one account), `orchestrator`, `support`,
`admin`. `admin` may do everything. `ADMIN_API_KEY` from the environment is an admin key
accepted from the start.
No or bad key: 401 `unauthorized`; a role that may not call the endpoint: 403 `forbidden`; a
customer asking about another account: 404 `not_found` (its existence is not revealed).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from ledger import api_keys
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


def _lookup(request: Request, secret: str) -> Principal | None:
    state = request.app.state.billing
    with state.session_factory() as session:
        key = api_keys.resolve_api_key(session, secret)
        if key is None:
            return None
        return Principal(key_id=key.id, role=key.role, account_id=key.account_id)


async def get_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    secret = credentials.credentials.strip()
    if len(secret) > 512:
        raise _unauthorized("the API key is not valid")
    admin_key = request.app.state.billing.settings.admin_api_key
    if admin_key and hmac.compare_digest(
        hashlib.sha256(secret.encode()).digest(), hashlib.sha256(admin_key.encode()).digest()
    ):
        return Principal(key_id=ENV_ADMIN_KEY_ID, role="admin")
    pool = request.app.state.billing.hot_pool
    if pool is not None:
        async with pool.connection() as conn:
            key = await api_keys.resolve_api_key_async(conn, secret)
        principal = Principal(key.id, key.role, key.account_id) if key is not None else None
    else:
        principal = await anyio.to_thread.run_sync(_lookup, request, secret)
    if principal is None:
        raise _unauthorized("the API key is not valid or was revoked")
    request.state.principal = principal
    return principal


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
