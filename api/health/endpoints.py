"""`/healthz`: PostgreSQL and Temporal reachable. (Prometheus metrics are on the internal
metrics port, api.metrics_server.)"""

from __future__ import annotations

import asyncio
from typing import Literal

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import StateDep
from ledger.reports import ping

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    postgres: str
    temporal: str


def _ping_postgres(state: StateDep) -> None:
    with state.session_factory() as session:
        ping(session)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is down"}},
    summary="Liveness and readiness: PostgreSQL and Temporal",
)
async def healthz(state: StateDep) -> Health | JSONResponse:
    postgres = temporal = "ok"
    try:
        await asyncio.wait_for(anyio.to_thread.run_sync(_ping_postgres, state), 5.0)
    except Exception as exc:
        postgres = f"error: {type(exc).__name__}"
    if state.temporal_client is None:
        temporal = f"error: {state.temporal_error or 'not connected'}"
    else:
        try:
            await asyncio.wait_for(state.temporal_client.service_client.check_health(), 5.0)
        except Exception as exc:
            temporal = f"error: {type(exc).__name__}"
    health = Health(
        status="ok" if postgres == temporal == "ok" else "degraded",
        postgres=postgres,
        temporal=temporal,
    )
    if health.status != "ok":
        return JSONResponse(health.model_dump(), status_code=503)
    return health
