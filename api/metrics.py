"""Prometheus metrics of the API process, on their own registry (served at `/metrics`)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.reports import ledger_totals

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
    "billing_api_process_charges_posted",
    "Charges this API process posted to the ledger, by kind",
    ["kind"],
    registry=REGISTRY,
)
PAISA_CHARGED = Counter(
    "billing_api_process_paisa_charged",
    "Paisa this API process charged to customers, by kind",
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


# Ledger-wide figures, read from PostgreSQL at each scrape (two aggregate queries): call charges are
# posted by the worker, so only the ledger knows every charge, whichever process posted it.
_LEDGER_KINDS = {"call_charge": "call", "call_adjustment": "call_adjustment", "api_charge": "api"}


class LedgerCollector(Collector):
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterable[Metric]:
        charges = CounterMetricFamily(
            "billing_charges_posted",
            "Charges posted to the ledger (calls by the worker, osmAPI by the API), by kind",
            labels=["kind"],
        )
        paisa = CounterMetricFamily(
            "billing_paisa_charged", "Paisa charged to customers, by kind", labels=["kind"]
        )
        with self.factory() as session:
            totals = ledger_totals(session)
        for kind, label in _LEDGER_KINDS.items():
            n, total = totals.charges.get(kind, (0, 0))
            charges.add_metric([label], n)
            paisa.add_metric([label], total)
        active = GaugeMetricFamily(
            "billing_active_holds", "Calls in progress holding credit (active holds)"
        )
        active.add_metric([], totals.active_holds)
        reserved_paisa = GaugeMetricFamily(
            "billing_reserved_paisa", "Σ active holds over all accounts, in paisa"
        )
        reserved_paisa.add_metric([], totals.reserved_paisa)
        return [charges, paisa, active, reserved_paisa]


def render(ledger: LedgerCollector | None) -> bytes:
    """The process metrics and, when the database answers, the ledger-wide ones."""
    output = generate_latest(REGISTRY)
    if ledger is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ledger)
        try:
            output += generate_latest(registry)
        except Exception:  # a scrape must not fail because PostgreSQL is down
            LEDGER_SCRAPE_ERRORS.inc()
            output = generate_latest(REGISTRY)
    return output


LEDGER_SCRAPE_ERRORS = Counter(
    "billing_ledger_scrape_errors",
    "Scrapes whose ledger-wide metrics could not be read from PostgreSQL",
    registry=REGISTRY,
)


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
