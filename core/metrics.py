"""Every billing metric, named once (the list deploy/grafana/metrics.txt documents).

Prometheus conventions: counters end in `_total`, durations are `_seconds` histograms, amounts
carry their unit (`_paisa`). Two processes export them:

- the worker, through the Temporal runtime's meter, on its Prometheus endpoint
  (`worker_prometheus_config`: the SDK appends `_total` to counters and `_seconds` to
  timedelta histograms, so the meter gets `Metric.meter_name`, the name without the suffix);
- the API, through prometheus_client (api/metrics.py builds its objects from these
  definitions), on its internal metrics port.

Worker code (activities, the reconciler) records with the helpers below, e.g.::

    from core.metrics import record_reconciler_run, record_reconciler_finding

    record_reconciler_run("ok")                      # inside an activity, or anywhere in the
    record_reconciler_finding("workflow_missing", 3) # worker (the runtime's default meter)

Recording never raises: metrics must not break billing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime

from domain.contracts import CALL_AUTHORIZE_ACTIVITY, CALL_FINALIZE_ACTIVITY
from domain.contracts.calls import CallAuthorization
from domain.ledger_types import FinalizeCallRequest, FinalizedCall

log = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]
# Seconds; the API's histograms and the worker's billing histograms share them.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Metric:
    name: str  # as Prometheus shows it
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()

    @property
    def meter_name(self) -> str:
        """The name a Temporal meter is given: its exporter adds `_total` / `_seconds`."""
        if self.kind == "counter":
            return self.name.removesuffix("_total")
        if self.kind == "histogram":
            return self.name.removesuffix("_seconds")
        return self.name


# --- what the dashboard shows (deploy/grafana/metrics.txt) ---------------------------------------
AUTHORIZATIONS = Metric(
    "billing_authorizations_total",
    "counter",
    "Authorization decisions: kind call (worker) or api (API); result authorized or refused",
    ("kind", "result", "reason"),
)
AUTHORIZE_DURATION = Metric(
    "billing_authorize_duration_seconds",
    "histogram",
    "From an authorization request reaching billing to the decision, by kind",
    ("kind",),
)
CALLS_FINALIZED = Metric(
    "billing_calls_finalized_total",
    "counter",
    "Calls finalized, by outcome and whether money was taken",
    ("outcome", "charged"),
)
HANGUP_TO_BALANCE = Metric(
    "billing_hangup_to_balance_seconds",
    "histogram",
    "From a call's hangup to the committed ledger transaction of its charge",
)
CHARGED_PAISA = Metric(
    "billing_charged_paisa_total",
    "counter",
    "Paisa charged to customers (revenue), kind call (worker) or api (API)",
    ("kind",),
)
ACTIVE_HOLDS = Metric(
    "billing_active_holds", "gauge", "Calls in progress holding credit (ledger-wide)"
)
RESERVED_PAISA = Metric(
    "billing_reserved_paisa", "gauge", "Paisa reserved by active holds (ledger-wide)"
)
RECONCILER_RUNS = Metric(
    "billing_reconciler_runs_total", "counter", "Reconciler runs, result ok or error", ("result",)
)
RECONCILER_FINDINGS = Metric(
    "billing_reconciler_findings_total",
    "counter",
    "Discrepancies the reconciler found between Temporal and the ledger, by finding",
    ("finding",),
)
HTTP_REQUESTS = Metric(
    "billing_http_requests_total",
    "counter",
    "HTTP requests served, by method, route template and status code",
    ("method", "route", "status"),
)
HTTP_REQUEST_DURATION = Metric(
    "billing_http_request_duration_seconds",
    "histogram",
    "HTTP request latency by method and route template",
    ("method", "route"),
)
# --- more detail, not on the dashboard -----------------------------------------------------------
ACTIVITY_EXECUTIONS = Metric(
    "billing_activity_executions_total",
    "counter",
    "Activity executions by activity type and result (ok, error)",
    ("activity", "result"),
)
ACTIVITY_DURATION = Metric(
    "billing_activity_duration_seconds",
    "histogram",
    "Activity execution time by activity type (local activities included)",
    ("activity",),
)
CREDITS_POSTED = Metric(
    "billing_credits_posted_total",
    "counter",
    "Credits posted through the API (topup, coupon, welcome), by kind",
    ("kind",),
)
LEDGER_GAUGE_ERRORS = Metric(
    "billing_ledger_gauge_refresh_errors_total",
    "counter",
    "Refreshes of the ledger-wide gauges that PostgreSQL did not answer",
)

WORKER_METRICS = (
    AUTHORIZATIONS,
    AUTHORIZE_DURATION,
    CALLS_FINALIZED,
    HANGUP_TO_BALANCE,
    CHARGED_PAISA,
    RECONCILER_RUNS,
    RECONCILER_FINDINGS,
    ACTIVITY_EXECUTIONS,
    ACTIVITY_DURATION,
)
API_METRICS = (
    AUTHORIZATIONS,
    AUTHORIZE_DURATION,
    CHARGED_PAISA,
    ACTIVE_HOLDS,
    RESERVED_PAISA,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    CREDITS_POSTED,
    LEDGER_GAUGE_ERRORS,
)
ALL_METRICS = {m.name: m for m in (*WORKER_METRICS, *API_METRICS)}


def worker_prometheus_config(bind_address: str) -> PrometheusConfig:
    """The worker's Prometheus endpoint with Prometheus names for the SDK's metrics and ours."""
    return PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={
            m.meter_name: LATENCY_BUCKETS for m in WORKER_METRICS if m.kind == "histogram"
        },
    )


# --- recording in the worker -----------------------------------------------------------------


def _meter() -> MetricMeter:
    """The current activity's meter, else the process runtime's (the worker sets its runtime as
    the default)."""
    if activity.in_activity():
        return activity.metric_meter()
    return Runtime.default().metric_meter


def _add(metric: Metric, value: int, labels: Mapping[str, str], meter: MetricMeter | None) -> None:
    try:
        (meter or _meter()).create_counter(metric.meter_name, metric.help).add(value, labels)
    except Exception:
        log.debug("metric %s not recorded", metric.name, exc_info=True)


def _observe(
    metric: Metric, seconds: float, labels: Mapping[str, str], meter: MetricMeter | None
) -> None:
    try:
        histogram = (meter or _meter()).create_histogram_timedelta(metric.meter_name, metric.help)
        histogram.record(timedelta(seconds=max(seconds, 0.0)), labels)
    except Exception:
        log.debug("metric %s not recorded", metric.name, exc_info=True)


def record_activity(
    info: activity.Info, args: Sequence[Any], result: Any, started: float, *, failed: bool
) -> None:
    """One activity execution (`started`: its `time.monotonic()` start) and, for the call
    activities, the business outcome: the authorization decision, the finalized call."""
    kind = info.activity_type
    outcome = "error" if failed else "ok"
    _add(ACTIVITY_EXECUTIONS, 1, {"activity": kind, "result": outcome}, None)
    _observe(ACTIVITY_DURATION, time.monotonic() - started, {"activity": kind}, None)
    if failed:
        return
    if kind == CALL_AUTHORIZE_ACTIVITY and isinstance(result, CallAuthorization):
        decision = result.decision
        # scheduled_time: when the update handler asked, so local-activity queueing counts.
        record_call_authorization(decision.authorized, decision.reason, info.scheduled_time)
    elif kind == CALL_FINALIZE_ACTIVITY and isinstance(result, FinalizedCall):
        request = args[0] if args else None
        ended_at = request.ended_at if isinstance(request, FinalizeCallRequest) else None
        record_call_finalized(
            result.outcome, result.charged, result.breakdown.total_paisa, ended_at
        )


def record_call_authorization(
    authorized: bool, reason: str | None, requested_at: datetime, meter: MetricMeter | None = None
) -> None:
    """A call's authorization decision, timed from when it was requested (scheduled)."""
    result = "authorized" if authorized else "refused"
    labels = {"kind": "call", "result": result, "reason": reason or ""}
    _add(AUTHORIZATIONS, 1, labels, meter)
    _observe(AUTHORIZE_DURATION, _since(requested_at), {"kind": "call"}, meter)


def record_call_finalized(
    outcome: str,
    charged: bool,
    total_paisa: int,
    ended_at: str | None,
    meter: MetricMeter | None = None,
) -> None:
    """A call's charge (or void) committed; `ended_at` is its hangup time (ISO)."""
    _add(CALLS_FINALIZED, 1, {"outcome": outcome, "charged": str(charged).lower()}, meter)
    if charged and total_paisa > 0:
        _add(CHARGED_PAISA, total_paisa, {"kind": "call"}, meter)
    hangup = _parse_time(ended_at)
    if hangup is not None and outcome != "abandoned":  # abandoned: nobody hung up
        _observe(HANGUP_TO_BALANCE, _since(hangup), {}, meter)


def record_reconciler_run(result: str, meter: MetricMeter | None = None) -> None:
    """One reconciler run: `ok` or `error`."""
    _add(RECONCILER_RUNS, 1, {"result": result}, meter)


def record_reconciler_finding(
    finding: str, count: int = 1, meter: MetricMeter | None = None
) -> None:
    """`count` discrepancies of one kind (e.g. `workflow_missing`, `hold_released`)."""
    if count > 0:
        _add(RECONCILER_FINDINGS, count, {"finding": finding}, meter)


def _since(moment: datetime) -> float:
    return (datetime.now(UTC) - moment).total_seconds()


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
