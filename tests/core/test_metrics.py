"""The worker's Prometheus endpoint after a real call: every metric deploy/grafana/metrics.txt
expects from the worker is there under its Prometheus name (the SDK's `temporal_*` ones too),
with the values the call produced."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig

from core.metrics import record_reconciler_finding, record_reconciler_run, worker_prometheus_config
from dev.procs import free_port
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from tests.support.calls import Ledger, running_worker, uid

METRICS_TXT = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "metrics.txt"


def listed(exported_by: str) -> dict[str, tuple[str, list[str]]]:
    """metrics.txt: name -> (type, labels) of the metrics `exported_by` (worker, api) exports."""
    found = {}
    for line in METRICS_TXT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, labels, by, _meaning = line.split(maxsplit=4)
            if exported_by in by.split(","):
                found[name] = (kind, [] if labels == "-" else labels.split(","))
    return found


def value(text: str, name: str, *labels: str) -> float:
    """The sum of `name`'s samples carrying every one of `labels`."""
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        if all(label in (match.group(1) or "") for label in labels):
            total += float(match.group(2))
    return total


async def test_a_call_leaves_every_worker_metric_under_its_prometheus_name(
    client: Client, session_factory: sessionmaker[Session], ledger: Ledger
) -> None:
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=worker_prometheus_config(f"127.0.0.1:{port}"))
    )
    metered = await Client.connect(client.service_client.config.target_host, runtime=runtime)
    account_id = ledger.account(paid=0, promo=5000)
    poor_account = ledger.account(paid=0, promo=0)
    async with running_worker(metered, session_factory) as billing:
        call_id = uid("metered")
        decision = await billing.authorize(call_id, account_id, "phone")
        assert decision.authorized
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE)
        await billing.hangup(call_id, "completed")
        result = await billing.result(call_id)
        assert result.charged and result.breakdown.total_paisa == 442
        refused = await billing.authorize(uid("refused"), poor_account, "phone")
        assert not refused.authorized
    # The reconciler records through the same helpers (here on this runtime's meter).
    record_reconciler_run("ok", meter=runtime.metric_meter)
    record_reconciler_finding("workflow_missing", 2, meter=runtime.metric_meter)

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name, (kind, labels) in listed("worker").items():
        series = f"{name}_bucket" if kind == "histogram" else name
        found = re.findall(rf"^{series}\{{([^}}]*)\}}", text, re.M)
        assert found, f"{series} not exported"
        keys = {pair.split("=")[0] for labelset in found for pair in labelset.split(",")}
        assert set(labels) <= keys, (name, labels, keys)
    assert value(text, "billing_authorizations_total", 'kind="call"', 'result="authorized"') >= 1
    assert value(text, "billing_authorizations_total", 'reason="insufficient_balance"') >= 1
    assert value(text, "billing_authorize_duration_seconds_count", 'kind="call"') >= 2
    assert value(text, "billing_charged_paisa_total", 'kind="call"') == 442
    assert (
        value(text, "billing_calls_finalized_total", 'charged="true"', 'outcome="completed"') == 1
    )
    assert value(text, "billing_hangup_to_balance_seconds_count") == 1
    # Our buckets (core.metrics.LATENCY_BUCKETS), not the SDK's coarse default.
    assert re.search(r'^billing_hangup_to_balance_seconds_bucket\{[^}]*le="0.025"', text, re.M)
    assert value(text, "billing_reconciler_findings_total", 'finding="workflow_missing"') == 2
    # Nothing left in the old conventions.
    assert not re.search(r"^billing_\w+_ms\b|^billing_activity_duration_bucket", text, re.M)
    assert not re.search(r"^temporal_\w+_latency_bucket", text, re.M)
