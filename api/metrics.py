"""Prometheus metrics of the API process, on their own registry (served at `/metrics`)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "billing_http_requests",
    "HTTP requests served, by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "billing_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
AUTHORIZATIONS = Counter(
    "billing_authorizations",
    "Authorization decisions taken through the API, by kind (call, api) and result",
    ["kind", "result"],
    registry=REGISTRY,
)
CHARGES_POSTED = Counter(
    "billing_charges_posted",
    "Charges posted to the ledger through the API, by kind",
    ["kind"],
    registry=REGISTRY,
)
PAISA_CHARGED = Counter(
    "billing_paisa_charged",
    "Paisa charged to customers through the API, by kind",
    ["kind"],
    registry=REGISTRY,
)
CREDITS_POSTED = Counter(
    "billing_credits_posted",
    "Credits posted through the API (topup, coupon, welcome), by kind",
    ["kind"],
    registry=REGISTRY,
)


def record_authorization(kind: str, granted: bool) -> None:
    AUTHORIZATIONS.labels(kind=kind, result="granted" if granted else "refused").inc()


def record_charge(kind: str, paisa: int) -> None:
    CHARGES_POSTED.labels(kind=kind).inc()
    PAISA_CHARGED.labels(kind=kind).inc(paisa)


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by route template (never raw paths)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            HTTP_LATENCY.labels(method=method, route=template).observe(
                time.perf_counter() - started
            )
