"""Markdown tables from a results JSON: `python -m bench.report docs/benchmarks/results.json`
(what docs/benchmarks.md quotes, so the figures there are copied by a program, not by hand)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _ms(p: dict[str, Any], *keys: str) -> str:
    values = [p.get(k) for k in keys]
    if all(v is None for v in values):
        return "–"
    return " / ".join("–" if v is None else f"{v:.0f}" for v in values)


def _ops_table(phases: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| case | per s | ok / failed | latency p50 / p95 / p99 ms | CPU: bench / foreign % |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        cpu = p.get("cpu") or {}
        lines.append(
            f"| {p['name']} | {p['per_s']:.0f} | {p['ok']} / {p['failed']} "
            f"| {_ms(p['latency'], 'p50_ms', 'p95_ms', 'p99_ms')} "
            f"| {cpu.get('bench_cpu_pct', '–')} / {cpu.get('foreign_cpu_pct', '–')} |"
        )
    return lines


def _capacity(capacity: dict[str, Any]) -> list[str]:
    lines = [
        f"Live-call capacity ({capacity['duration_s']:.0f} s calls, one usage batch a second): "
        f"billed N = {capacity['billed']['max_calls']}, baseline N = "
        f"{capacity['baseline']['max_calls']}.",
        "",
        "| workflow | N | ok / failed | hangup p99 ms | signal lag p99 ms | events lost | held |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    trials = [(kind, t) for kind in ("baseline", "billed") for t in capacity[kind]["trials"]]
    # The ledger floor (runs since it was added): at the target level, and maybe one more.
    trials += [("ledger floor", t) for t in capacity.get("ledger_floor", {}).get("trials", [])]
    for kind, t in trials:
        held = "yes" if t["held"] else "no"
        lines.append(
            f"| {kind} | {t['calls']} | {t['ok']} / {t['failed']} | {t['hangup_p99_ms']} "
            f"| {t['signal_lag_p99_ms']} | {t['events_lost']} | {held} |"
        )
    lines.append("")
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = []
    m = results["machine"]
    s = results["settings"]
    lines.append(
        f"Run {results['generated_at']} at commit `{m.get('git_commit', '?')}` on "
        f"{m.get('cpus')} × {m.get('cpu_model', '?')}, {m.get('memory_gb', '?')} GB, "
        f"{m.get('platform')}, Python {m.get('python')}, temporalio {m.get('temporalio')}, "
        f"{m.get('temporal_cli', 'temporal CLI ?')}; Temporal dev server on "
        f"{'a SQLite file' if s['temporal_db'] == 'file' else 'memory'}, "
        f"{s.get('billing_workers', 1)} billing worker process(es). "
        f"Load average at start {m.get('loadavg_at_start')}."
    )
    lines.append("")
    lines.append(f"Command: `{results['command'].strip()}`")
    lines.append("")
    if results.get("phases"):
        lines.append(
            "| case | calls/s | calls ok / failed | authorize p50 / p95 / p99 ms "
            "| hangup → result p50 / p95 / p99 ms | hangup → balance p50 / p95 / p99 ms "
            "| CPU: bench / foreign % |"
        )
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for p in results["phases"]:
            name = p["name"]
            if "latency" in p["kind"]:
                name += " (open loop)"
            elif p.get("concurrency"):
                name += f" (c={p['concurrency']})"
            cpu = p.get("cpu") or {}
            lines.append(
                f"| {name} | {p['calls_per_s']:.1f} | {p['calls_ok']} / {p['calls_failed']} "
                f"| {_ms(p['authorize'], 'p50_ms', 'p95_ms', 'p99_ms')} "
                f"| {_ms(p['hangup_to_result'], 'p50_ms', 'p95_ms', 'p99_ms')} "
                f"| {_ms(p['hangup_to_balance'], 'p50_ms', 'p95_ms', 'p99_ms')} "
                f"| {cpu.get('bench_cpu_pct', '–')} / {cpu.get('foreign_cpu_pct', '–')} |"
            )
        lines.append("")
        names = ("temporal", "worker", "baseline_worker", "postgres", "api", "load_generator")
        lines.append(
            "CPU by process of the stack, in % of the whole machine (100 % = all cores busy):"
        )
        lines.append("")
        lines.append("| case | " + " | ".join(n.replace("_", " ") for n in names) + " |")
        lines.append("| --- |" + " ---: |" * len(names))
        for p in results["phases"]:
            per = (p.get("cpu") or {}).get("bench_cpu_pct_by_process")
            if per:
                cells = " | ".join(f"{per.get(n, 0):.1f}" for n in names)
                lines.append(f"| {p['name']} | {cells} |")
        lines.append("")
        summary = results["summary"]
        lines.append(
            "| usage signals per call | baseline | baseline+notify | baseline+ledger | billed "
            "| hot account | billed ÷ baseline | hot ÷ baseline | baseline+notify ÷ baseline "
            "| baseline+ledger ÷ baseline | billed ÷ baseline+ledger |"
        )
        lines.append("| --- |" + " ---: |" * 10)
        for mode, label in (("unbatched", "10 (unbatched)"), ("batched", "1 (batched)")):
            x = summary[mode]
            lines.append(
                f"| {label} | {x['baseline_calls_per_s']} "
                f"| {x.get('baseline_notify_calls_per_s', '–')} "
                f"| {x.get('ledger_floor_calls_per_s', '–')} "
                f"| {x['billed_calls_per_s']} | {x['hot_account_calls_per_s']} "
                f"| {x['billed_over_baseline']} | {x['hot_over_baseline']} "
                f"| {x.get('notify_over_baseline', '–')} "
                f"| {x.get('ledger_floor_over_baseline', '–')} "
                f"| {x.get('billed_over_ledger_floor', '–')} |"
            )
        lines.append("")
    for group, title in (("ledger", "Ledger vs raw psycopg"), ("api", "osmAPI over HTTP")):
        if group in results:
            lines.append(f"{title}:")
            lines.append("")
            lines.extend(_ops_table(results[group]["phases"]))
            lines.append("")
    if "capacity" in results:
        lines.extend(_capacity(results["capacity"]))
    lines.append("| target | measured | verdict |")
    lines.append("| --- | ---: | --- |")
    for name, t in results["summary"]["targets"].items():
        measured = t.get("measured", t.get("measured_ms", t.get("measured_ratio", "")))
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        lines.append(f"| `{name}` | {'' if measured is None else measured} | {verdict} |")
    lines.append("")
    v = results["verification"]
    lines.append(
        f"Ledger after the run: {v['invariant_violation_count']} invariant violations, "
        f"{v['billed_calls_generated']} billed calls generated, "
        f"{v['calls_with_wrong_charge']} charged differently than the generator priced, "
        f"{v['active_holds']} active holds; charged {v['ledger_charged_paisa']} paisa, "
        f"expected {v['expected_charged_paisa']}"
        + (
            f"; osmAPI charged {v['api_ledger_charged_paisa']} paisa, expected "
            f"{v['api_expected_charged_paisa']}."
            if "api_ledger_charged_paisa" in v
            else "."
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path("docs/benchmarks/results.json")
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
