"""Request dependencies: the app's state, database, Temporal, and the caller's principal.

`SessionDep` is the app's `sessionmaker`: every ledger operation runs in one transaction through
`run_db(factory, lambda s: coupons.redeem_coupon(s, ...))`, which retries conflicts (db.session)
on a worker thread so the event loop never blocks on PostgreSQL. The hot paths (osmAPI charges,
API key lookups) run on `BillingState.hot_pool` instead, on the event loop (db.async_pool).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from adapters.payments.razorpay import RazorpayGateway
from api.auth import Principal, get_principal
from api.errors import ApiError
from api.key_cache import ApiKeyCache
from core.config import Settings
from db.async_pool import AsyncPool
from db.session import run_in_transaction
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient

T = TypeVar("T")


@dataclass
class BillingState:
    settings: Settings
    database_url: str
    session_factory: sessionmaker[Session]
    policy: LedgerPolicy
    temporal_client: Client | None = None
    temporal_error: str | None = None
    razorpay: RazorpayGateway | None = None  # None: payments not configured (503 on checkout)
    # The async pool of the hot paths (db.async_pool); None: everything goes through threads.
    hot_pool: AsyncPool | None = None
    # Looked-up API keys (api.key_cache); off (never listening) until the app's listener runs.
    key_cache: ApiKeyCache = field(default_factory=lambda: ApiKeyCache(0.0))

    def billing_client(self) -> BillingClient:
        if self.temporal_client is None:
            raise ApiError(503, "temporal_unavailable", self.temporal_error or "no Temporal")
        return BillingClient(self.temporal_client, task_queue=self.settings.task_queue)


def state_of(request: Request) -> BillingState:
    state: BillingState = request.app.state.billing
    return state


# The dependencies are `async def` although they do no I/O: FastAPI runs a plain `def`
# dependency on a worker thread, a thread hop per request.
async def get_state(request: Request) -> BillingState:
    return state_of(request)


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    return state_of(request).session_factory


async def get_temporal(request: Request) -> Client:
    state = state_of(request)
    if state.temporal_client is None:
        raise ApiError(503, "temporal_unavailable", state.temporal_error or "no Temporal client")
    return state.temporal_client


async def get_billing_client(request: Request) -> BillingClient:
    return state_of(request).billing_client()


async def get_policy(request: Request) -> LedgerPolicy:
    return state_of(request).policy


async def run_db(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """One ledger transaction (retried on conflicts) on a worker thread."""
    return await anyio.to_thread.run_sync(run_in_transaction, factory, work)


StateDep = Annotated[BillingState, Depends(get_state)]
SessionDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
BillingClientDep = Annotated[BillingClient, Depends(get_billing_client)]
PolicyDep = Annotated[LedgerPolicy, Depends(get_policy)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
