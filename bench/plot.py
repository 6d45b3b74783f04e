"""The latency CDFs and throughput bars of a run (docs/benchmarks/*.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.load import percentiles
from bench.measure import Phase


def plot(phases: list[Phase], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    latency = next(p for p in phases if p.kind == "latency")
    floor = next(p for p in phases if p.kind == "baseline-latency")

    def cdf(ax: Any, phase: Phase, attr: str, label: str, color: str, marks: bool) -> None:
        values = percentiles([getattr(s, attr) for s in phase.ok if getattr(s, attr)])
        if not values.values_ms:
            return
        n = len(values.values_ms)
        p99 = values.p99_ms or 0.0
        ax.plot(
            values.values_ms,
            [(i + 1) / n for i in range(n)],
            color=color,
            label=f"{label} (p99 {p99:.0f} ms)",
        )
        if marks:
            for q, name in ((values.p50_ms, "p50"), (values.p95_ms, "p95"), (values.p99_ms, "p99")):
                if q is not None:
                    ax.axvline(q, linestyle="--", linewidth=0.8, color="grey")
                    ax.text(q, 0.02, f" {name} {q:.0f}", rotation=90, fontsize=8)

    ax = axes[0]
    cdf(ax, latency, "authorize_s", "billed", "tab:blue", True)
    cdf(ax, floor, "authorize_s", "baseline (no billing)", "tab:grey", False)
    ax.axvline(100, color="tab:red", linewidth=1.2, label="target p99 ≤ 100 ms")
    ax.set_title(f"authorize latency, open loop @{latency.target_rate} calls/s")
    ax = axes[1]
    cdf(ax, latency, "hangup_to_balance_s", "billed: balance visible", "tab:blue", True)
    cdf(ax, latency, "hangup_to_result_s", "billed: workflow result", "tab:cyan", False)
    cdf(ax, floor, "hangup_to_result_s", "baseline: workflow result", "tab:grey", False)
    ax.axvline(250, color="tab:red", linewidth=1.2, label="target p99 ≤ 250 ms")
    ax.set_title(f"after hangup, open loop @{latency.target_rate} calls/s")
    for ax in axes[:2]:
        ax.set_xlabel("ms")
        ax.set_ylabel("fraction of calls")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    closed = [p for p in phases if "latency" not in p.kind]
    names = [p.name for p in closed]
    rates = [p.calls_per_s() for p in closed]
    colors = [
        {
            "baseline": "tab:grey",
            "notify": "tab:olive",
            "ledger": "tab:brown",
            "billed": "tab:blue",
            "hot": "tab:orange",
        }[p.kind]
        for p in closed
    ]
    axes[2].barh(names, rates, color=colors)
    for i, rate in enumerate(rates):
        axes[2].text(rate, i, f" {rate:.1f}", va="center", fontsize=8)
    axes[2].set_title("sustained calls/s (10 usage events per call)")
    axes[2].set_xlabel("calls/s")
    axes[2].invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
