"""What a run found, as data (the calls' ratios) and as the table printed at the end."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.measure import Phase
from bench.stack import REPO_ROOT


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        import temporalio

        info["temporalio"] = temporalio.__version__
    except Exception:
        pass
    try:
        from dev.temporal import temporal_cli_path

        version = subprocess.run(
            [temporal_cli_path(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        info["temporal_cli"] = version
    except Exception:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=REPO_ROOT,
        ).stdout.strip()
        info["git_commit"] = commit
    except Exception:
        pass
    return info


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarize(phases: list[Phase]) -> dict[str, Any]:
    """The calls' ratios (billed ÷ baseline, hot ÷ baseline, and against the ledger floor:
    baseline+ledger ÷ baseline is about the most billing that writes the ledger one transaction
    per write could reach, billed ÷ baseline+ledger how near it comes) and the latency phase. A
    run without the floor's phases has no floor ratios."""
    by_name = {p.name: p for p in phases}
    summary: dict[str, Any] = {}
    for mode in ("unbatched", "batched"):
        base = by_name[f"baseline {mode}"].calls_per_s()
        notify = by_name[f"baseline+notify {mode}"].calls_per_s()
        billed = by_name[f"billed {mode}"].calls_per_s()
        hot = by_name[f"hot {mode}"].calls_per_s()
        ledger_floor = by_name.get(f"baseline+ledger {mode}")
        summary[mode] = {
            "baseline_calls_per_s": round(base, 2),
            "baseline_notify_calls_per_s": round(notify, 2),
            "notify_over_baseline": ratio(notify, base),
            "billed_calls_per_s": round(billed, 2),
            "hot_account_calls_per_s": round(hot, 2),
            "billed_over_baseline": ratio(billed, base),
            "hot_over_baseline": ratio(hot, base),
        }
        if ledger_floor is not None:
            floor_rate = ledger_floor.calls_per_s()
            summary[mode] |= {
                "ledger_floor_calls_per_s": round(floor_rate, 2),
                "ledger_floor_over_baseline": ratio(floor_rate, base),
                "billed_over_ledger_floor": ratio(billed, floor_rate),
            }
    latency = next(p for p in phases if p.kind == "latency").public()
    floor = next(p for p in phases if p.kind == "baseline-latency").public()
    summary["latency_phase"] = {
        "target_rate_calls_per_s": latency["target_rate_calls_per_s"],
        "achieved_calls_per_s": latency["calls_per_s"],
        "authorize": latency["authorize"],
        "hangup_to_balance": latency["hangup_to_balance"],
        "hangup_to_result": latency["hangup_to_result"],
        "baseline_authorize": floor["authorize"],
        "baseline_hangup_to_result": floor["hangup_to_result"],
    }
    return summary


def print_calls(phases: list[Phase], summary: dict[str, Any]) -> None:
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.0f}" if isinstance(value, float) else str(value)

    header = (
        f"{'case':<26}{'calls/s':>9}{'ok':>7}{'fail':>6}"
        f"{'auth p50/p95/p99 ms':>24}{'hangup→result p50/p99':>24}"
        f"{'hangup→balance p50/p95/p99':>29}{'cpu own/foreign %':>19}"
    )
    print()
    print(header)
    print("-" * len(header))
    for phase in phases:
        row = phase.public()
        a, r, b = row["authorize"], row["hangup_to_result"], row["hangup_to_balance"]
        cpu = row["cpu"]
        print(
            f"{row['name']:<26}{row['calls_per_s']:>9.1f}{row['calls_ok']:>7}"
            f"{row['calls_failed']:>6}"
            f"{fmt(a['p50_ms']) + '/' + fmt(a['p95_ms']) + '/' + fmt(a['p99_ms']):>24}"
            f"{fmt(r['p50_ms']) + '/' + fmt(r['p99_ms']):>24}"
            f"{fmt(b['p50_ms']) + '/' + fmt(b['p95_ms']) + '/' + fmt(b['p99_ms']):>29}"
            f"{fmt(cpu.get('bench_cpu_pct')) + '/' + fmt(cpu.get('foreign_cpu_pct')):>19}"
        )
    print()
    for mode in ("unbatched", "batched"):
        s = summary[mode]
        print(
            f"{mode:<10} billed/baseline = {s['billed_over_baseline']}   "
            f"hot/baseline = {s['hot_over_baseline']}   "
            f"baseline+notify/baseline = {s['notify_over_baseline']}"
        )
        if "ledger_floor_over_baseline" in s:
            print(
                f"{'':<10} baseline+ledger/baseline = {s['ledger_floor_over_baseline']} "
                "(the ledger floor)   "
                f"billed/(baseline+ledger) = {s['billed_over_ledger_floor']}"
            )


def print_ops(title: str, phases: list[dict[str, Any]]) -> None:
    """Ledger / HTTP phases: items per second, latency, CPU."""
    print(f"\n{title}")
    header = (
        f"{'case':<44}{'per s':>10}{'ok':>9}{'fail':>6}{'p50/p99 ms':>16}{'cpu own/foreign %':>19}"
    )
    print(header)
    print("-" * len(header))
    for row in phases:
        lat, cpu = row["latency"], row.get("cpu") or {}
        p = f"{lat['p50_ms'] or 0:.1f}/{lat['p99_ms'] or 0:.1f}"
        c = f"{cpu.get('bench_cpu_pct', '-')}/{cpu.get('foreign_cpu_pct', '-')}"
        print(
            f"{row['name']:<44}{row['per_s']:>10.1f}{row['ok']:>9}{row['failed']:>6}{p:>16}{c:>19}"
        )


def print_verification(verification: dict[str, Any]) -> None:
    v = verification
    print(
        f"\nledger: {v['invariant_violation_count']} invariant violations, "
        f"{v['calls_with_wrong_charge']} calls charged differently than generated, "
        f"{v['active_holds']} active holds; calls charged {v['ledger_charged_paisa']} paisa, "
        f"expected {v['expected_charged_paisa']}; osmAPI charged "
        f"{v['api_ledger_charged_paisa']} paisa, expected {v['api_expected_charged_paisa']}"
    )
