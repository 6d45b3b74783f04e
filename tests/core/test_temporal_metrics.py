"""The API's Temporal SDK metrics: a client on a MetricBuffer runtime shows up on a
prometheus_client registry under Prometheus names: `_total` counters, `_seconds` histograms
(the names the worker's exporter gives the same metrics)."""

from __future__ import annotations

import contextlib
import re

from prometheus_client import CollectorRegistry, generate_latest
from temporalio.client import Client
from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

from core.temporal_metrics import TemporalSdkCollector


async def test_client_rpc_metrics_reach_the_registry(client: Client) -> None:
    buffer = MetricBuffer(10_000, duration_format=MetricBufferDurationFormat.SECONDS)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    registry = CollectorRegistry()
    registry.register(TemporalSdkCollector(buffer))
    metered = await Client.connect(client.service_client.config.target_host, runtime=runtime)
    for _ in range(3):
        await metered.service_client.check_health()
        handle = metered.get_workflow_handle("no-such-workflow-for-metrics")
        with contextlib.suppress(Exception):
            await handle.describe()
    text = generate_latest(registry).decode()
    requests = re.findall(r"^temporal_request_total\{[^}]*\} (\S+)$", text, re.M)
    assert requests and sum(float(v) for v in requests) >= 3, text
    latency = re.findall(
        r'^temporal_request_latency_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)', text, re.M
    )
    # Seconds: the calls to a local server finish within the 0.25 s bucket.
    assert any(le == "0.25" and float(n) >= 3 for le, n in latency), text
    assert "temporal_request_latency_bucket" not in text and "_total_total" not in text
    # Counters are cumulative across scrapes.
    await metered.service_client.check_health()
    text = generate_latest(registry).decode()
    again = re.findall(r"^temporal_request_total\{[^}]*\} (\S+)$", text, re.M)
    assert sum(float(v) for v in again) > sum(float(v) for v in requests)
