"""API keys: admin only. The secret is shown once; only its hash is stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.auth import Principal, require_roles
from api.deps import SessionDep, StateDep, run_db
from api.errors import MUTATING
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.keys import service as keys
from api.keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], route_class=IdempotentRoute)
Admin = Annotated[Principal, Depends(require_roles("admin"))]


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Create an API key (shown once)",
)
async def create_api_key(body: ApiKeyCreate, _: Admin, factory: SessionDep) -> ApiKeyCreated:
    return await run_db(factory, lambda s: keys.create_key(s, body.role, body.account_id))


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Revoke an API key",
)
async def revoke_api_key(
    key_id: Annotated[str, Path(min_length=1, max_length=64)], _: Admin, state: StateDep
) -> ApiKeyOut:
    revoked = await run_db(state.session_factory, lambda s: keys.revoke_key(s, key_id))
    # Committed: this process refuses the key from the next request on (the others when the
    # commit's notification reaches them, api.key_cache).
    state.key_cache.forget(key_id)
    return revoked
