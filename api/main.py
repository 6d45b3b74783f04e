"""The billing HTTP API (contract §4): `app` for uvicorn, built by `create_app()`.

Run: `uvicorn api.main:app` (settings from the environment, core.config) or
`create_app(Settings(database_url=..., temporal_address=..., admin_api_key=...))` in tests.
On startup it refuses to run in production without its secrets (core.production), runs the
migrations, connects one Temporal client (lazily, so the API starts even while Temporal is
still coming up; `/healthz` reports it) and serves its Prometheus metrics on the internal port
API_METRICS_PORT (api.metrics_server). `api.main:app` also sets the process up: JSON log lines
(core.logging) and the tracer provider (core.tracing). The edge (body limit, unstorable text,
rate limits, security headers) is api.security.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from adapters.payments.razorpay_checkout import configured_razorpay
from api.accounts.endpoints import router as accounts_router
from api.api_usage.endpoints import router as api_usage_router
from api.calls.endpoints import router as calls_router
from api.coupons.endpoints import router as coupons_router
from api.dashboard import router as dashboard_router
from api.dashboard.payments import router as dashboard_payments_router
from api.dashboard.refunds import router as dashboard_refunds_router
from api.deps import BillingState
from api.errors import install_error_handlers
from api.health.endpoints import router as health_router
from api.key_cache import ApiKeyCache
from api.keys.endpoints import router as keys_router
from api.metrics import REGISTRY as METRICS_REGISTRY
from api.metrics import MetricsMiddleware
from api.metrics_server import MetricsServer
from api.payments.endpoints import router as payments_router
from api.rate_cards.endpoints import router as rate_cards_router
from api.refunds.endpoints import router as refunds_router
from api.security import install_security
from api.statements.endpoints import router as statements_router
from core.config import Settings, get_settings
from core.logging import LogContextMiddleware, configure_logging
from core.production import refuse_insecure_start
from core.temporal_connection import connect_temporal, temporal_target
from core.temporal_metrics import sdk_metrics_runtime
from core.tracing import instrument_app, instrument_engine, setup_tracing, temporal_interceptors
from db.async_pool import open_async_pool
from db.migrate import upgrade
from db.session import get_engine, get_sessionmaker
from ledger import api_keys
from ledger.policy import policy_from_settings

log = logging.getLogger("api")

DESCRIPTION = """
Prepaid INR billing for osmTalk voice calls and osmAPI LLM requests.

* Money is always an **integer number of paisa** (`..._paisa`), ₹1 = 100 paisa.
* Auth: `Authorization: Bearer <api key>`; roles `customer` (one account), `orchestrator`,
  `support`, `admin` (admin may do everything). A customer asking about another account gets 404.
* Errors are `application/problem+json` with a stable `code`.
* Mutating endpoints accept `Idempotency-Key`: the same key and body replay the first answer,
  the same key with another body is 409 `conflict`.
"""


OPENAPI_TAG_ORDER = (
    "accounts",
    "statements",
    "api keys",
    "coupons",
    "rate cards",
    "refunds",
    "payments",
    "calls",
    "osmAPI usage",
    "operations",
)


def _database_url(settings: Settings) -> str:
    # Required: `make serve`/`make run` (dev.stack) and the tests pass one; production never
    # starts a database of its own.
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is required for the API")
    return settings.database_url


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refuse_insecure_start(settings, "api")  # production without its secrets: no start
        url = _database_url(settings)
        if run_migrations and settings.migrate_on_start:
            await anyio.to_thread.run_sync(upgrade, url)
        # Threads for the synchronous ledger calls, one pooled connection each (+2 for the
        # event loop's own short uses), no overflow: no connection churn, no pre-ping.
        threads = max(1, settings.api_db_threads)
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        state = BillingState(
            settings=settings,
            database_url=url,
            session_factory=get_sessionmaker(url, threads + 2, 0, False),
            policy=policy_from_settings(settings),
            razorpay=configured_razorpay(settings),
        )
        instrument_engine(get_engine(url, threads + 2, 0, False))
        if settings.api_hot_pool_size > 0:
            state.hot_pool = await open_async_pool(url, settings.api_hot_pool_size)
        key_listener: asyncio.Task[None] | None = None
        if settings.api_key_cache_seconds > 0:
            state.key_cache = ApiKeyCache(settings.api_key_cache_seconds)
            key_listener = asyncio.create_task(
                state.key_cache.listen(lambda: api_keys.key_changes(url)), name="api-key-changes"
            )
        address = temporal_target(settings)
        try:
            state.temporal_client = await connect_temporal(
                settings,
                lazy=True,
                # The SDK's own metrics (RPC counts, latencies) on this process's metrics port.
                runtime=sdk_metrics_runtime(METRICS_REGISTRY),
                interceptors=temporal_interceptors(),
            )
        except Exception as exc:  # the API still serves the ledger; /healthz says why
            state.temporal_error = f"{address}: {exc}"
            log.warning("cannot connect to Temporal at %s: %s", address, exc)
        app.state.billing = state
        metrics = MetricsServer.start(
            settings.api_metrics_host,
            settings.api_metrics_port,
            state.session_factory,
            settings.ledger_gauges_refresh_seconds,
        )
        # What start-up made (modules, the app, pools) lives as long as the process: out of the
        # collector's sight, so a full collection under load scans only what requests made.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if metrics is not None:
                metrics.stop()
            if key_listener is not None:
                key_listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await key_listener
            if state.hot_pool is not None:
                await state.hot_pool.close()

    app = FastAPI(
        title="osmTalk Billing API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The documentation's order of sections (the routes are included in another, above).
        openapi_tags=[{"name": tag} for tag in OPENAPI_TAG_ORDER],
    )
    install_error_handlers(app)
    instrument_app(app)  # a server span per request: the root of the call's trace
    install_security(app, settings)  # 413, 422 for unstorable text, throttles, headers
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(LogContextMiddleware)  # call_id/account_id on every log line
    # The hot paths first: routing and the tracing middleware's route lookup try the routes in
    # this order, a few microseconds each (~0.1 ms a request when osmAPI came 35th). No path of
    # these two routers matches another router's route, so the order changes no answer.
    for router in (
        api_usage_router,
        calls_router,
        accounts_router,
        statements_router,
        keys_router,
        coupons_router,
        rate_cards_router,
        refunds_router,
        payments_router,
        health_router,
        dashboard_router,
        dashboard_payments_router,
        dashboard_refunds_router,
    ):
        app.include_router(router)
    return app


_process_app: FastAPI | None = None


def __getattr__(name: str) -> FastAPI:
    """`api.main:app`, the process's app (uvicorn), built on first access after JSON logging and
    the tracer provider are set up, so even uvicorn's first lines are JSON. Importing this module
    (tests build their own apps with `create_app`) configures nothing."""
    global _process_app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _process_app is None:
        settings = get_settings()
        configure_logging(settings.log_level, service="api")
        setup_tracing("api")
        _process_app = create_app(settings)
    return _process_app
