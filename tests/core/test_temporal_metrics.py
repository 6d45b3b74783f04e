"""The API's Temporal SDK metrics: a client on a MetricBuffer runtime shows up on a
prometheus_client registry as counters and millisecond histograms."""

from __future__ import annotations

import contextlib
import re

from prometheus_client import CollectorRegistry, generate_latest
from temporalio.client import Client
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from core.temporal_metrics import TemporalSdkCollector


async def test_client_rpc_metrics_reach_the_registry(client: Client) -> None:
    buffer = MetricBuffer(10_000)
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
    requests = re.findall(r"^temporal_request(?:_total)?\{[^}]*\} (\S+)$", text, re.M)
    assert requests and sum(float(v) for v in requests) >= 3, text
    assert re.search(r'^temporal_request_latency_bucket\{[^}]*le="\+Inf"[^}]*\} \d', text, re.M)
    # Counters are cumulative across scrapes.
    await metered.service_client.check_health()
    text = generate_latest(registry).decode()
    again = re.findall(r"^temporal_request(?:_total)?\{[^}]*\} (\S+)$", text, re.M)
    assert sum(float(v) for v in again) > sum(float(v) for v in requests)
