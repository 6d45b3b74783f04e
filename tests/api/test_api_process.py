"""`uvicorn api.main:app` as docker-compose runs it (no log config of ours on the command line):
every line it writes is JSON, the access line of a request carries that request's trace id, and
its metrics answer on the internal port only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from dev.procs import ChildProcess, free_ports, python_command, wait_for_http
from tests.support.stack import ROOT, temporal_address


def test_the_api_process_logs_json_with_trace_ids(
    database_url: str, workflow_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port, metrics_port = free_ports(2)
    log_path = tmp_path / "api.log"
    api = ChildProcess(
        "api",
        python_command("uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)),
        log_path=log_path,
        env={
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal_address(workflow_env),
            "ADMIN_API_KEY": "osk_admin_process_test_key_0123456789",
            "API_METRICS_PORT": str(metrics_port),
            "MIGRATE_ON_START": "false",
            "PYTHONPATH": str(ROOT),
            "OTEL_TRACES_EXPORTER": "none",
        },
        cwd=ROOT,
    )
    with api:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/rate-cards/current",
            headers={
                "Authorization": "Bearer osk_admin_process_test_key_0123456789",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            },
        )
        assert response.status_code == 200, response.text
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'route="/v1/rate-cards/current",status="200"' in metrics
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    assert lines
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"trace_id", "span_id", "call_id", "account_id"} <= e.keys() for e in entries)
    access = next(e for e in entries if re.search(r"GET /v1/rate-cards/current", e["message"]))
    # The caller's W3C trace context is continued: its trace id is on the access line.
    assert access["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert access["service"] == "api" and access["level"] == "info"
