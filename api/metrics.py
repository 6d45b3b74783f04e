"""Prometheus metrics of the API process, on their own registry, served on the internal metrics
port (api.metrics_server), never on the public API port. Names and help come from
core.metrics, the one list of billing metrics."""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics as m

# No `_created` series: Prometheus does not need them, and the worker's exporter has none.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)


def _counter(metric: m.Metric) -> Counter:
    # prometheus_client appends `_total` to a counter's name itself.
    name = metric.name.removesuffix("_total")
    return Counter(name, metric.help, list(metric.labels), registry=REGISTRY)


def _histogram(metric: m.Metric) -> Histogram:
    return Histogram(
        metric.name,
        metric.help,
        list(metric.labels),
        buckets=m.LATENCY_BUCKETS,
        registry=REGISTRY,
    )


def _gauge(metric: m.Metric) -> Gauge:
    return Gauge(metric.name, metric.help, list(metric.labels), registry=REGISTRY)


HTTP_REQUESTS = _counter(m.HTTP_REQUESTS)
HTTP_LATENCY = _histogram(m.HTTP_REQUEST_DURATION)
AUTHORIZATIONS = _counter(m.AUTHORIZATIONS)
AUTHORIZE_DURATION = _histogram(m.AUTHORIZE_DURATION)
CHARGED_PAISA = _counter(m.CHARGED_PAISA)
CREDITS_POSTED = _counter(m.CREDITS_POSTED)
# Set by api.metrics_server.LedgerGauges from a cached, periodic ledger read.
ACTIVE_HOLDS = _gauge(m.ACTIVE_HOLDS)
RESERVED_PAISA = _gauge(m.RESERVED_PAISA)
LEDGER_GAUGE_ERRORS = _counter(m.LEDGER_GAUGE_ERRORS)


def record_authorization(
    kind: str, authorized: bool, reason: str | None, started: float | None = None
) -> None:
    """An authorization decision the API took itself (osmAPI requests: kind `api`); call
    authorizations are decided, and counted, by the worker. `started`: `time.perf_counter()`
    when the request reached the endpoint."""
    result = "authorized" if authorized else "refused"
    AUTHORIZATIONS.labels(kind=kind, result=result, reason=reason or "").inc()
    if started is not None:
        AUTHORIZE_DURATION.labels(kind=kind).observe(time.perf_counter() - started)


def record_charge(kind: str, paisa: int) -> None:
    CHARGED_PAISA.labels(kind=kind).inc(paisa)


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
