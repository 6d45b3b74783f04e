"""One trace from the HTTP request through the call's workflow and its activity down to the
ledger's SQL (in-memory exporter), and the trace id on the log lines written along the way."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from core.config import Settings
from core.logging import ContextFilter, JsonFormatter
from core.tracing import instrument_engine, setup_tracing, temporal_interceptors
from domain.contracts import CALL_AUTHORIZE_ACTIVITY
from tests.support.calls import Ledger, running_worker, uid
from tests.support.stack import ApiServer


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    assert setup_tracing("test", exporter=exporter) is not None
    return exporter


@pytest.fixture
def activity_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("billing.activity")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def _wait_for_spans(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    deadline = time.monotonic() + 10
    while True:
        found = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        if any(s.name.startswith("RunActivity:") for s in found) and any(
            s.attributes and "db.statement" in s.attributes for s in found
        ):
            return found
        assert time.monotonic() < deadline, [s.name for s in found]
        await asyncio.sleep(0.05)


async def test_one_trace_from_post_calls_through_the_workflow_to_the_ledger_sql(
    spans: InMemorySpanExporter,
    activity_log: io.StringIO,
    client: Client,
    session_factory: sessionmaker[Session],
    ledger: Ledger,
    database_url: str,
) -> None:
    queue = uid("traced")
    admin_key = uid("osk_admin")
    settings = Settings(
        database_url=database_url,
        temporal_address=client.service_client.config.target_host,
        admin_api_key=admin_key,
        task_queue=queue,
        api_metrics_port=0,
    )
    traced = await Client.connect(
        client.service_client.config.target_host, interceptors=temporal_interceptors()
    )
    # As `python -m worker` does for its own engine (the API instruments its pool's).
    instrument_engine(session_factory.kw["bind"])
    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("traced-call")
    async with running_worker(traced, session_factory, task_queue=queue):
        with ApiServer(settings) as api:
            async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
                admin = {"Authorization": f"Bearer {admin_key}"}
                key = await http.post("/v1/api-keys", json={"role": "orchestrator"}, headers=admin)
                assert key.status_code == 201, key.text
                orchestrator = {"Authorization": f"Bearer {key.json()['key']}"}
                spans.clear()
                response = await http.post(
                    "/v1/calls",
                    json={"call_id": call_id, "account_id": account_id, "channel": "phone"},
                    headers=orchestrator,
                )
                assert response.status_code == 200, response.text
                (server,) = [
                    s
                    for s in spans.get_finished_spans()
                    if s.kind == SpanKind.SERVER and s.name == "POST /v1/calls"
                ]
                trace = await _wait_for_spans(spans, server.context.trace_id)
                hangup = await http.post(
                    f"/v1/calls/{call_id}/hangup",
                    json={"outcome": "no_answer"},
                    headers=orchestrator,
                )
                assert hangup.status_code == 202

    by_id = {s.context.span_id: s for s in trace}
    names = {s.name for s in trace}
    # API → Temporal client → workflow → local activity, all one trace.
    assert "StartUpdateWithStartWorkflow:CallBillingWorkflow" in names, names
    assert "RunWorkflow:CallBillingWorkflow" in names, names
    authorize = next(s for s in trace if s.name == f"RunActivity:{CALL_AUTHORIZE_ACTIVITY}")
    assert server in _ancestors(authorize, by_id)
    # … down to the ledger transaction's SQL, run by that activity.
    sql = [
        s
        for s in trace
        if s.attributes and "db.statement" in s.attributes and authorize in _ancestors(s, by_id)
    ]
    statements = " ".join(str(s.attributes["db.statement"]) for s in sql if s.attributes)
    assert "holds" in statements, statements
    # The API's own SQL of this request (the precheck) is in the trace too, under the server span.
    assert any(
        server in _ancestors(s, by_id) and authorize not in _ancestors(s, by_id)
        for s in trace
        if s.attributes and "db.statement" in s.attributes
    )
    # The activity's log line carries the trace and its own span.
    lines = [json.loads(line) for line in activity_log.getvalue().splitlines()]
    logged = next(
        line
        for line in lines
        if line["message"] == f"activity {CALL_AUTHORIZE_ACTIVITY} completed"
        and line["call_id"] == call_id
    )
    assert logged["trace_id"] == f"{server.context.trace_id:032x}"
    assert logged["span_id"] == f"{authorize.context.span_id:016x}"


def test_spans_are_recorded_only_once_something_exports_them() -> None:
    """ExportedOnly: before an exporter, spans are not recorded but keep real trace ids (the
    log lines' trace_id) that children share; from the first exporter on they are recorded."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from core.tracing import ExportedOnly

    sampler = ExportedOnly(ALWAYS_ON)
    provider = TracerProvider(sampler=sampler)
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("parent") as parent,
        tracer.start_as_current_span("child") as child,
    ):
        assert not parent.is_recording() and not child.is_recording()
        assert parent.get_span_context().trace_id != 0
        assert child.get_span_context().trace_id == parent.get_span_context().trace_id
        assert child.get_span_context().span_id != parent.get_span_context().span_id

    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sampler.exporting = True
    with tracer.start_as_current_span("recorded") as span:
        assert span.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["recorded"]
