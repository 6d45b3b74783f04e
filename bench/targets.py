"""The targets of issue 16 and issue 12's running-holds cost, each met or missed from one run's
results (a target whose part of the bench did not run is `not measured`, never met)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, Any]


def _get(results: Results, *path: str | int) -> Any:
    value: Any = results
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _phase(results: Results, group: str, name: str) -> dict[str, Any] | None:
    for phase in _get(results, group, "phases") or []:
        if phase.get("name") == name:
            found: dict[str, Any] = phase
            return found
    return None


def _rate(results: Results, group: str, name: str) -> float | None:
    phase = _phase(results, group, name)
    return phase["per_s"] if phase and phase.get("ok") else None


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _rates(
    group_a: str, name_a: str, group_b: str, name_b: str
) -> Callable[[Results], float | None]:
    """The ratio of two phases' rates."""
    return lambda r: _div(_rate(r, group_a, name_a), _rate(r, group_b, name_b))


def _calls_ratio(mode: str, a: str, b: str) -> Callable[[Results], float | None]:
    return lambda r: _div(_calls(r, mode, a), _calls(r, mode, b))


def _latency_ratio(a: str, b: str) -> Callable[[Results], float | None]:
    return lambda r: _div(_latency(r, a), _latency(r, b))


def _api_authorize_p99(results: Results) -> float | None:
    for phase in _get(results, "api", "phases") or []:
        if phase["name"].startswith("api-usage/authorize @"):
            p99: float | None = phase["latency"]["p99_ms"]
            return p99
    return None


def _calls(results: Results, mode: str, key: str) -> float | None:
    value: float | None = _get(results, "summary", mode, key)
    return value


def _latency(results: Results, key: str) -> float | None:
    value: float | None = _get(results, "summary", "latency_phase", key, "p99_ms")
    return value


def _ledger_consistent(results: Results) -> bool | None:
    v = results.get("verification")
    if not v:
        return None
    return bool(
        v["invariant_violation_count"] == 0
        and v["calls_with_wrong_charge"] == 0
        and v["active_holds"] == 0
        and v.get("api_expected_charged_paisa") == v.get("api_ledger_charged_paisa")
    )


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    measure: Callable[[Results], float | bool | None]
    met: Callable[[float], bool] | None = None  # None: `measure` says met itself (a bool)


TARGETS: tuple[Target, ...] = (
    Target(
        "api_usage_spread_ge_0_3_raw",
        "POST /v1/api-usage charges/s spread over accounts ≥ 0.3 × raw psycopg",
        _rates("api", "api-usage, spread", "ledger", "raw api charge, spread"),
        lambda x: x >= 0.3,
    ),
    Target(
        "api_usage_hot_ge_0_3_raw_hot",
        "POST /v1/api-usage charges/s on one hot account ≥ 0.3 × raw psycopg on one account",
        _rates("api", "api-usage, hot", "ledger", "raw api charge, hot"),
        lambda x: x >= 0.3,
    ),
    Target(
        "api_authorize_p99_le_20ms_at_half_peak",
        "POST /v1/api-usage/authorize p99 ≤ 20 ms at half of its peak (ms)",
        _api_authorize_p99,
        lambda x: x <= 20,
    ),
    Target(
        "api_batch_ge_5000_per_s",
        "batch form (1,000 requests a call) ≥ 5,000 charges/s",
        lambda r: _rate(r, "api", "api-usage/batch ×1000, spread"),
        lambda x: x >= 5000,
    ),
    Target(
        "api_temporal_only_on_crossing",
        "osmAPI charges touch Temporal only when a balance crosses the alert threshold",
        lambda r: _get(r, "api", "temporal", "met"),
    ),
    Target(
        "billed_ge_0_9_baseline_batched",
        "billed ÷ baseline calls/s, batched usage ≥ 0.9",
        lambda r: _calls(r, "batched", "billed_over_baseline"),
        lambda x: x >= 0.9,
    ),
    Target(
        "billed_ge_0_9_baseline_unbatched",
        "billed ÷ baseline calls/s, unbatched usage ≥ 0.9",
        lambda r: _calls(r, "unbatched", "billed_over_baseline"),
        lambda x: x >= 0.9,
    ),
    Target(
        "hot_ge_0_9_spread_batched",
        "hot account ÷ spread calls/s, batched ≥ 0.9",
        _calls_ratio("batched", "hot_account_calls_per_s", "billed_calls_per_s"),
        lambda x: x >= 0.9,
    ),
    Target(
        "hot_ge_0_9_spread_unbatched",
        "hot account ÷ spread calls/s, unbatched ≥ 0.9",
        _calls_ratio("unbatched", "hot_account_calls_per_s", "billed_calls_per_s"),
        lambda x: x >= 0.9,
    ),
    Target(
        "authorize_p99_le_1_15x_baseline",
        "call authorize p99 at half of peak ≤ 1.15 × the baseline's (ratio)",
        _latency_ratio("authorize", "baseline_authorize"),
        lambda x: x <= 1.15,
    ),
    Target(
        "hangup_to_balance_p99_le_1_5x_baseline_result",
        "hangup → balance visible p99 ≤ 1.5 × the baseline's hangup → result p99 (ratio)",
        _latency_ratio("hangup_to_balance", "baseline_hangup_to_result"),
        lambda x: x <= 1.5,
    ),
    Target(
        "ledger_calls_ge_0_8_raw",
        "ledger authorize + capture ≥ 0.8 × raw psycopg of the same two transactions",
        _rates(
            "ledger", "ledger call authorize + capture", "ledger", "raw call authorize + capture"
        ),
        lambda x: x >= 0.8,
    ),
    Target(
        "live_calls_billed_ge_0_9_baseline",
        "live-call capacity: billed N ≥ 0.9 × the baseline's N (hangup → balance p99 < 1 s, "
        "no signal backlog)",
        lambda r: _div(
            _get(r, "capacity", "billed", "max_calls"), _get(r, "capacity", "baseline", "max_calls")
        ),
        lambda x: x >= 0.9,
    ),
    Target(
        "running_holds_cost_le_10pct",
        "live-call capacity: billed N with running holds ≥ 0.9 × billed N without them "
        "(same run, same levels; a lower bound when the variant without holds failed first)",
        lambda r: _get(r, "capacity", "running_holds", "billed_over_without_holds"),
        lambda x: x >= 0.9,
    ),
    Target(
        "ledger_consistent",
        "0 invariant violations, every charge exact to the paisa, no hold left",
        _ledger_consistent,
    ),
)


def evaluate(results: Results) -> dict[str, dict[str, Any]]:
    """name → {description, measured, met}; met is None when the target was not measured."""
    out: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        measured = target.measure(results)
        if measured is None:
            met: bool | None = None
        elif target.met is None:
            met = bool(measured)
            measured = None
        else:
            met = target.met(float(measured))  # on the exact figure; shown rounded
            measured = round(float(measured), 3)
        out[target.name] = {"description": target.description, "measured": measured, "met": met}
    return out


def verdict(met: bool | None) -> str:
    return "met" if met else "not measured" if met is None else "MISSED"


def table(targets: dict[str, dict[str, Any]]) -> str:
    """The printed form: one line per target, every one of them."""
    lines = []
    for name, t in targets.items():
        measured = "" if t["measured"] is None else str(t["measured"])
        lines.append(f"  {verdict(t['met']):<13} {name:<46} {measured:>10}  {t['description']}")
    return "\n".join(lines)
