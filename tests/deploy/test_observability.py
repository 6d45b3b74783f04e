"""deploy/prometheus and deploy/grafana: the dashboard parses, every query names only metrics
listed in deploy/grafana/metrics.txt (the names the code exports), those names follow Prometheus
conventions, and the scrape config, provisioning and docker-compose.yml agree on ports, paths and
the datasource."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: frozenset[str]


def _metrics() -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for line in (GRAFANA / "metrics.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, kind, labels, _exported_by, _meaning = line.split(maxsplit=4)
        assert name not in found, f"{name} listed twice"
        keys = frozenset() if labels == "-" else frozenset(labels.split(","))
        found[name] = Metric(name, kind, keys)
    return found


METRICS = _metrics()


def _dashboard() -> dict[str, Any]:
    data = json.loads((GRAFANA / "dashboards" / "billing.json").read_text())
    assert isinstance(data, dict)
    return data


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def referenced_series(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, keywords, labels dropped)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):  # not inside 5m, 1e3
        token = match.group(0)
        following = text[match.end() :].lstrip()
        if following.startswith("(") or token.lower() in PROMQL_KEYWORDS:
            continue
        names.add(token)
    return names


def metric_of(series: str) -> Metric | None:
    if series in METRICS:
        return METRICS[series]
    for suffix in HISTOGRAM_SERIES:
        base = series.removesuffix(suffix)
        if base != series and METRICS.get(base, Metric("", "", frozenset())).type == "histogram":
            return METRICS[base]
    return None


def test_the_query_parser_finds_series_and_only_series() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{kind="call",'
        ' route=~"/v1/.+"}[5m]))) / on (job) group_left b_total offset 5m'
    )
    assert referenced_series(expr) == {"a_seconds_bucket", "b_total"}
    assert metric_of("billing_authorize_duration_seconds_bucket") is not None
    assert metric_of("billing_calls_finalized_total_bucket") is None  # not a histogram
    assert metric_of("billing_call_charged_paisa") is None  # an old name


def test_metric_names_follow_prometheus_conventions() -> None:
    for metric in METRICS.values():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", metric.name), metric.name
        assert metric.type in ("counter", "gauge", "histogram"), metric.name
        if metric.type == "counter":
            assert metric.name.endswith("_total"), metric.name
        else:
            assert not metric.name.endswith("_total"), metric.name
        if metric.type == "histogram":
            assert metric.name.endswith("_seconds"), metric.name
        assert not re.search(r"_(ms|millis|milliseconds)(_|$)", metric.name), metric.name


def test_the_dashboard_parses_and_uses_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "osmtalk-billing"
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]


@pytest.mark.parametrize(("title", "expr"), _queries(_dashboard()))
def test_every_query_names_only_listed_metrics(title: str, expr: str) -> None:
    series = referenced_series(expr)
    assert series, f"{title}: {expr} selects nothing"
    for name in series:
        metric = metric_of(name)
        assert metric is not None, f"{title}: {name} is not in deploy/grafana/metrics.txt"
        if metric.type == "histogram":
            assert name.endswith("_bucket") and "histogram_quantile(" in expr, f"{title}: {name}"
        if metric.type == "counter":
            assert re.search(r"\b(rate|increase|irate)\(", expr), f"{title}: raw counter {name}"
    known = {"le"}.union(*(m.labels for m in map(metric_of, series) if m))
    keys = [
        k.strip() for g in re.findall(r"(?:by|without) \(([^)]*)\)", expr) for k in g.split(",")
    ]
    keys += re.findall(r"[{,]\s*(\w+)\s*(?:=~|!~|!=|=)", expr)  # label matchers
    for key in keys:
        assert key in known, f"{title}: label {key} on {series}"


def test_every_listed_metric_is_on_the_dashboard_and_the_issue_panels_exist() -> None:
    queries = _queries(_dashboard())
    used = {m.name for _, e in queries for m in map(metric_of, referenced_series(e)) if m}
    assert used == set(METRICS)
    titles = " | ".join(title.lower() for title, _ in queries)
    for wanted in (
        "calls per second",
        "authorize latency",
        "hangup → balance",
        "refusals",
        "revenue",
        "reconciler findings",
        "workflow task",
    ):
        assert wanted in titles, wanted


def test_scrape_config_matches_the_compose_file() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    env = services["api"]["environment"]
    for job_name, service, port_var in (
        ("billing-worker", "worker", "WORKER_METRICS_PORT"),
        ("billing-api", "api", "API_METRICS_PORT"),
    ):
        (sd,) = jobs[job_name]["dns_sd_configs"]
        assert sd["names"] == [service]
        assert str(sd["port"]) == env[port_var]
        assert env[port_var] in services[service]["expose"]
    assert jobs["temporal-server"]["static_configs"][0]["targets"] == ["temporal:9090"]
    assert services["temporal"]["environment"]["PROMETHEUS_ENDPOINT"].endswith(":9090")
    mounts = {
        name: [str(v).split(":")[0] for v in services[name]["volumes"]]
        for name in ("prometheus", "grafana")
    }
    assert "./deploy/prometheus/prometheus.yml" in mounts["prometheus"]
    assert {"./deploy/grafana/provisioning", "./deploy/grafana/dashboards"} <= set(
        mounts["grafana"]
    )
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "billing.yml").read_text()
    )["providers"][0]
    dashboards_target = next(
        str(v).split(":")[1] for v in services["grafana"]["volumes"] if "dashboards" in str(v)
    )
    assert provider["options"]["path"] == dashboards_target


def _registered_api_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """What the API process's registry exports: name -> (type, labels)."""
    from api.metrics import REGISTRY

    found = {}
    for family in REGISTRY.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        found[name] = (family.type, frozenset(labels))
    return found


def test_the_code_defines_every_listed_billing_metric() -> None:
    """Each billing_* name the dashboard expects is defined once in core.metrics with the listed
    type and labels, and registered by the processes metrics.txt says export it (the worker's
    and the SDK's names are checked on a live endpoint in tests/core/test_metrics.py)."""
    from core import metrics as code

    listed_by = {}
    for line in (GRAFANA / "metrics.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _kind, _labels, exported_by, _meaning = line.split(maxsplit=4)
            listed_by[name] = set(exported_by.split(","))
    api_names = {m.name for m in code.API_METRICS}
    worker_names = {m.name for m in code.WORKER_METRICS}
    api_registry = _registered_api_metrics()
    for metric in METRICS.values():
        if not metric.name.startswith("billing_"):
            continue
        defined = code.ALL_METRICS.get(metric.name)
        assert defined is not None, f"{metric.name} is not defined in core/metrics.py"
        assert defined.kind == metric.type, metric.name
        assert frozenset(defined.labels) == metric.labels, metric.name
        assert ("api" in listed_by[metric.name]) == (metric.name in api_names), metric.name
        assert ("worker" in listed_by[metric.name]) == (metric.name in worker_names), metric.name
        if metric.name in api_names:
            assert api_registry[metric.name][0] == metric.type, metric.name
    for name, (_kind, labels) in api_registry.items():
        if name.startswith("billing_"):
            assert name in code.ALL_METRICS, f"{name}: register API metrics from core.metrics"
            assert labels <= set(code.ALL_METRICS[name].labels), name
