"""JSON log lines carry call_id and account_id, from the context or from `extra=`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest

from core.logging import bind_log_context, configure_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_line_is_json_with_call_and_account_ids() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", service="test", stream=stream)
    log = logging.getLogger("billing.test")
    log.info("outside")
    with bind_log_context(call_id="c-1", account_id="a-1"):
        log.info("inside", extra={"amount_paisa": 442})
        with bind_log_context(call_id="c-2"):
            log.warning("nested")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    log.info("explicit", extra={"call_id": "c-9", "account_id": "a-9"})
    lines = _lines(stream)
    assert [line["message"] for line in lines] == [
        "outside",
        "inside",
        "nested",
        "failed",
        "explicit",
    ]
    assert all({"ts", "level", "call_id", "account_id", "service"} <= line.keys() for line in lines)
    assert (lines[0]["call_id"], lines[0]["account_id"]) == (None, None)
    assert (lines[1]["call_id"], lines[1]["account_id"]) == ("c-1", "a-1")
    assert lines[1]["amount_paisa"] == 442
    assert (lines[2]["call_id"], lines[2]["account_id"]) == ("c-2", "a-1")
    assert "ValueError: boom" in str(lines[3]["exc_info"])
    assert (lines[4]["call_id"], lines[4]["account_id"]) == ("c-9", "a-9")


def test_every_line_carries_the_current_trace_and_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    stream = io.StringIO()
    configure_logging("INFO", service="test", stream=stream)
    log = logging.getLogger("billing.test")
    tracer = TracerProvider().get_tracer("test")
    log.info("outside")
    with tracer.start_as_current_span("request") as span:
        log.info("inside")
    outside, inside = _lines(stream)
    assert (outside["trace_id"], outside["span_id"]) == (None, None)
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"


async def test_context_follows_tasks_and_is_isolated_between_them() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("billing.test")

    async def call(call_id: str) -> None:
        with bind_log_context(call_id=call_id, account_id=f"acct-{call_id}"):
            await asyncio.sleep(0.01)
            log.info("usage")

    await asyncio.gather(*(call(f"c{i}") for i in range(5)))
    lines = _lines(stream)
    assert sorted((line["call_id"], line["account_id"]) for line in lines) == [
        (f"c{i}", f"acct-c{i}") for i in range(5)
    ]


def test_configure_twice_keeps_one_handler() -> None:
    configure_logging("INFO", stream=io.StringIO())
    configure_logging("INFO", stream=io.StringIO())
    names = [h.get_name() for h in logging.getLogger().handlers]
    assert names.count("billing-json") == 1


async def test_api_middleware_binds_ids_from_the_path() -> None:
    import httpx

    from core.logging import LogContextMiddleware

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("billing.test.api")

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        log.info("handling %s", scope["path"])
        assert callable(send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=LogContextMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/v1/calls/c-42")).status_code == 200
        assert (await http.get("/v1/accounts/acc_7/balance")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
    lines = [line for line in _lines(stream) if line["logger"] == "billing.test.api"]
    assert [(line["call_id"], line["account_id"]) for line in lines] == [
        ("c-42", None),
        (None, "acc_7"),
        (None, None),
    ]


async def test_activity_interceptor_logs_each_activity_with_its_ids(client: object) -> None:
    import uuid
    from datetime import timedelta

    from temporalio.client import Client
    from temporalio.worker import Worker

    from core.logging import activity_log_interceptor
    from tests.core import log_workflows

    assert isinstance(client, Client)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    queue = f"log-test-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[log_workflows.LogWorkflow],
        activities=[log_workflows.charge, log_workflows.no_ids],
        interceptors=[activity_log_interceptor()],
    ):
        result = await client.execute_workflow(
            log_workflows.LogWorkflow.run,
            "acc_9",
            id="call-log-1-" + queue,
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )
    assert result == "ok"
    lines = [line for line in _lines(stream) if line["logger"] in ("billing.activity", "t.act")]
    inside = next(line for line in lines if line["message"] == "charging")
    assert (inside["call_id"], inside["account_id"]) == ("c-77", "acc_9")
    done = next(line for line in lines if line["message"] == "activity charge completed")
    assert (done["call_id"], done["account_id"]) == ("c-77", "acc_9")
    assert isinstance(done["duration_ms"], float)
    # No ids in the argument: the call id comes from the `call-<id>` workflow id.
    other = next(line for line in lines if line["message"] == "activity no_ids completed")
    assert other["call_id"] == "log-1-" + queue
    assert other["account_id"] is None


async def test_activity_interceptor_exports_business_metrics(client: object) -> None:
    import socket
    import urllib.request
    import uuid
    from datetime import timedelta

    from temporalio.client import Client
    from temporalio.runtime import Runtime, TelemetryConfig
    from temporalio.worker import Worker

    from core.logging import activity_log_interceptor
    from core.metrics import worker_prometheus_config
    from tests.core import log_workflows

    assert isinstance(client, Client)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=worker_prometheus_config(f"127.0.0.1:{port}"))
    )
    metered = await Client.connect(client.service_client.config.target_host, runtime=runtime)
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    async with Worker(
        metered,
        task_queue=queue,
        workflows=[log_workflows.FinalizeWorkflow],
        activities=[log_workflows.finalize],
        interceptors=[activity_log_interceptor()],
    ):
        for n in range(2):
            outcome = await metered.execute_workflow(
                log_workflows.FinalizeWorkflow.run,
                f"m-{n}",
                id=f"metrics-{queue}-{n}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
            assert outcome == "completed"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "temporal_" in text  # the SDK's own metrics on the same endpoint
    charged = [line for line in text.splitlines() if line.startswith("billing_charged_paisa_total")]
    assert charged and float(charged[0].rsplit(" ", 1)[1]) == 884, charged
    assert 'kind="call"' in charged[0]
    assert re.search(
        r'billing_calls_finalized_total\{[^}]*charged="true"[^}]*outcome="completed"[^}]*\} 2\b',
        text,
    ), text
    assert re.search(r'billing_activity_executions_total\{activity="call_finalize"', text), text
    assert re.search(r'billing_activity_duration_seconds_bucket\{activity="call_finalize"', text)
