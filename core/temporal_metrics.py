"""Temporal SDK metrics of a process that is a Temporal *client* (the API), on its own
prometheus_client registry, so one `/metrics` serves both the business metrics and the SDK's.

    runtime = sdk_metrics_runtime(REGISTRY)        # once per process
    client = await Client.connect(address, runtime=runtime)

The worker does not need this: its Runtime exports Prometheus directly on WORKER_METRICS_PORT.
Here the SDK records into a `MetricBuffer`; a collector drains it (on every scrape and from a
daemon thread once a second, so it never fills) and keeps cumulative counters, last gauge
values and histograms. Names are the ones the worker's exporter gives with
`core.metrics.worker_prometheus_config`: counters end in `_total`, durations are seconds
histograms ending in `_seconds` (e.g. `temporal_request_total`,
`temporal_request_latency_seconds`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetric,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from core.metrics import LATENCY_BUCKETS

BUCKETS = LATENCY_BUCKETS
Labels = tuple[tuple[str, str], ...]


def _labels(attributes: Mapping[str, Any]) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def _name(metric: BufferedMetric) -> str:
    """Prometheus naming, as the worker's exporter does it (counters_total_suffix,
    unit_suffix with durations in seconds)."""
    raw = metric.name
    name = raw if raw.startswith("temporal_") else f"temporal_{raw}"
    if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
        return f"{name}_total"
    if metric.unit == "s" and not name.endswith("_seconds"):
        return f"{name}_seconds"
    return name


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.total += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class TemporalSdkCollector(Collector):
    def __init__(self, buffer: MetricBuffer) -> None:
        self.buffer = buffer
        self.lock = threading.Lock()
        self.help: dict[str, str] = {}
        self.counters: dict[str, dict[Labels, float]] = {}
        self.gauges: dict[str, dict[Labels, float]] = {}
        self.histograms: dict[str, dict[Labels, _Histogram]] = {}

    def drain(self) -> None:
        with self.lock:
            try:
                updates = self.buffer.retrieve_updates()
            except RuntimeError:  # no runtime yet
                return
            for update in updates:
                metric = update.metric
                name = _name(metric)
                self.help.setdefault(name, metric.description or metric.name)
                labels = _labels(update.attributes)
                if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                    series = self.counters.setdefault(name, {})
                    series[labels] = series.get(labels, 0.0) + float(update.value)
                elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                    self.gauges.setdefault(name, {})[labels] = float(update.value)
                else:
                    hist = self.histograms.setdefault(name, {})
                    hist.setdefault(labels, _Histogram()).observe(float(update.value))

    def collect(self) -> Iterator[Metric]:
        self.drain()
        with self.lock:
            for name, series in self.counters.items():
                keys = sorted({k for labels in series for k, _ in labels})
                # CounterMetricFamily adds `_total` itself.
                counter = CounterMetricFamily(
                    name.removesuffix("_total"), self.help[name], labels=keys
                )
                for labels, value in series.items():
                    values = dict(labels)
                    counter.add_metric([values.get(k, "") for k in keys], value)
                yield counter
            for name, series in self.gauges.items():
                keys = sorted({k for labels in series for k, _ in labels})
                gauge = GaugeMetricFamily(name, self.help[name], labels=keys)
                for labels, value in series.items():
                    values = dict(labels)
                    gauge.add_metric([values.get(k, "") for k in keys], value)
                yield gauge
            for name, hists in self.histograms.items():
                keys = sorted({k for labels in hists for k, _ in labels})
                family = HistogramMetricFamily(name, self.help[name], labels=keys)
                for labels, hist in hists.items():
                    values = dict(labels)
                    family.add_metric(
                        [values.get(k, "") for k in keys], hist.buckets(), sum_value=hist.total
                    )
                yield family


_runtime: Runtime | None = None
_lock = threading.Lock()


def sdk_metrics_runtime(registry: CollectorRegistry, *, drain_interval: float = 1.0) -> Runtime:
    """A Runtime whose SDK metrics appear in `registry` (one per process; later calls return
    the same runtime)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            return _runtime
        buffer = MetricBuffer(100_000, duration_format=MetricBufferDurationFormat.SECONDS)
        runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
        collector = TemporalSdkCollector(buffer)
        registry.register(collector)
        stop = threading.Event()

        def drain_forever() -> None:
            while not stop.wait(drain_interval):
                collector.drain()

        threading.Thread(target=drain_forever, name="temporal-metrics", daemon=True).start()
        _runtime = runtime
        return runtime
