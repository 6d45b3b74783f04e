"""OpenTelemetry tracing: one trace from an HTTP request through the call's workflow and its
activities to the ledger's SQL.

    setup_tracing("api")                     # once per process: the SDK tracer provider
    instrument_app(app)                      # FastAPI: a server span per request
    instrument_engine(engine)                # SQLAlchemy: a span per statement
    Client.connect(..., interceptors=temporal_interceptors())
                                             # Temporal: the context crosses client → workflow →
                                             # activity in headers (the SDK's TracingInterceptor;
                                             # a worker inherits its client's interceptors)

Configuration follows OpenTelemetry's own variables:
- `OTEL_SDK_DISABLED=true`: no tracing at all (no spans, no instrumentation).
- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): spans go to that
  collector over OTLP/HTTP (protobuf); `OTEL_EXPORTER_OTLP_HEADERS` etc. as usual.
- `OTEL_TRACES_EXPORTER`: `otlp`, `console` (JSON on stdout) or `none`; without it, `otlp` when an
  endpoint is set, else `none`: spans are still made, so every log line carries a `trace_id`
  (core.logging) that follows a call from the API into the worker. While nothing exports them
  they are not recorded (`ExportedOnly`): the ids and their propagation stay, the cost of
  recording spans that nobody reads goes (about a tenth of the worker's CPU under live calls).
- `OTEL_SERVICE_NAME` (default `osmtalk-billing-<service>`), `OTEL_TRACES_SAMPLER` /
  `OTEL_TRACES_SAMPLER_ARG` (the SDK reads them; default: always on).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from sqlalchemy import Engine
from temporalio.contrib.opentelemetry import TracingInterceptor

log = logging.getLogger(__name__)
_lock = threading.Lock()
_engines: list[Engine] = []


def tracing_enabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def _exporter_names() -> list[str]:
    configured = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if configured:
        return [name.strip() for name in configured.split(",") if name.strip()]
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint else []


def _processors() -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    for name in _exporter_names():
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif name != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER={name}: use otlp, console or none")
    return processors


class ExportedOnly(Sampler):
    """The environment's sampler (`OTEL_TRACES_SAMPLER`, default parent-based always-on) once
    something exports spans; until then every span is dropped. A dropped span still has its
    trace and span ids, which log lines carry and Temporal headers and HTTP propagate; it just
    keeps no attributes, events or timings, which only an exporter would read."""

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured
        self.exporting = False

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if self.exporting:
            return self.configured.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        parent = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(Decision.DROP, None, parent.trace_state if parent else None)

    def get_description(self) -> str:
        return f"ExportedOnly{{{self.configured.get_description()}}}"


def _configured_sampler() -> Sampler:
    from opentelemetry.sdk.trace import sampling

    return sampling._get_from_env_or_default()  # what TracerProvider() itself would pick


def setup_tracing(service: str, *, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """The process's tracer provider, made (and set as OpenTelemetry's global) on the first call
    with the exporters the environment names; `exporter` (tests: an in-memory one) is added to
    it, on any call. Spans are recorded from the first exporter on (`ExportedOnly`). None when
    tracing is disabled."""
    if not tracing_enabled():
        return None
    with _lock:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            name = os.environ.get("OTEL_SERVICE_NAME") or f"osmtalk-billing-{service}"
            provider = TracerProvider(
                resource=Resource.create({"service.name": name}),
                sampler=ExportedOnly(_configured_sampler()),
            )
            processors = _processors()
            for processor in processors:
                provider.add_span_processor(processor)
            _start_exporting(provider, bool(processors))
            trace.set_tracer_provider(provider)
            log.info("tracing on: service %s, exporters %s", name, _exporter_names() or "none")
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            _start_exporting(provider, True)
        return provider


def _start_exporting(provider: TracerProvider, exporting: bool) -> None:
    if exporting and isinstance(provider.sampler, ExportedOnly):
        provider.sampler.exporting = True


def instrument_app(app: Any) -> None:
    """A server span for every HTTP request of a FastAPI app (health checks excluded)."""
    if tracing_enabled():
        # The server span only: the instrumentation's internal spans for each ASGI `receive`
        # and `send` message (three a request) said nothing the server span does not, and
        # cost more CPU than it on the osmAPI charge path.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="healthz", exclude_spans=["receive", "send"]
        )


def instrument_engine(engine: Engine) -> None:
    """A span for every SQL statement on `engine` (each engine once)."""
    if not tracing_enabled():
        return
    with _lock:
        if any(known is engine for known in _engines):
            return
        _engines.append(engine)
        instrumentor = SQLAlchemyInstrumentor()
        # The instrumentor is a singleton that takes its engines once: a new engine means
        # instrumenting all of them again.
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        # Its declared range stops below SQLAlchemy 2.1, which it handles fine (the engine's
        # event API is unchanged; tests/core/test_tracing.py checks the spans).
        instrumentor.instrument(engines=list(_engines), skip_dep_check=True)


def temporal_interceptors() -> list[TracingInterceptor]:
    """For `Client.connect(interceptors=...)`: carries the trace into workflows and activities."""
    return [TracingInterceptor()] if tracing_enabled() else []
