"""The benchmark: `python -m bench.run` (`make bench`).

Starts a private stack (PostgreSQL, Temporal dev server, billing worker, API, baseline worker) on
127.0.0.1, then in one run:

1. throughput, closed loop at `--concurrency` for `--duration` seconds per case (split into
   `--rounds` interleaved rounds): the baseline workflow (same shape, no billing), the baseline
   plus the per-call balance notification (signal-with-start of a per-account workflow), billed
   calls spread over many accounts, billed calls all on one hot account — each unbatched (10
   usage signals per call) and batched (one signal with the 10 events);
2. latency, open loop at half of the billed batched peak: authorize latency and hangup →
   balance-visible latency, polled through `GET /v1/accounts/{id}/balance` until the account
   shows exactly the expected balance with the hold released;
3. the ledger invariant checker over everything the run wrote, and the charged totals against
   what the load generator priced.

Writes `docs/benchmarks/results.json` and `docs/benchmarks/latency.png` and prints a table.
Every loop is bounded by time and by a call count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.baseline import BASELINE_TASK_QUEUE, NOTIFY_TASK_QUEUE
from bench.load import CallPlan, CallSample, drive_call, make_plan, percentiles, seed_accounts
from bench.stack import REPO_ROOT, Stack
from orchestrator_client import BillingClient

KIND_LABELS = {
    "baseline": "baseline",
    "notify": "baseline+notify",
    "billed": "billed",
    "hot": "hot",
}
TOP_UP_PAISA = 50_000_000  # ₹5 lakh per account: no call is ever refused during the run
MAX_CALLS_PER_PHASE = 20_000


COMPONENTS = ("load_generator", "worker", "api", "baseline_worker", "temporal", "postgres")


class CpuMeter:
    """How busy the machine was, and how much of that was this benchmark's own processes (the
    stack's servers with their children, and this process, each counted apart); the rest is
    foreign load that skews the figures."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def _roots(self) -> list[tuple[str, int]]:
        roots = [("load_generator", os.getpid())]
        for name, proc in (
            *(("worker", w) for w in self.stack.workers),
            ("api", self.stack.api),
            ("baseline_worker", self.stack.baseline),
        ):
            if proc is not None and proc.pid:
                roots.append((name, proc.pid))
        if self.stack.temporal.pid:
            roots.append(("temporal", self.stack.temporal.pid))
        if self.stack.postgres is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid_file = self.stack.postgres.data_dir / "postmaster.pid"
                roots.append(("postgres", int(pid_file.read_text().splitlines()[0])))
        return roots

    def sample(self) -> list[float]:
        """[wall s, machine busy CPU s, our CPU s, then our CPU s per component]."""
        import psutil

        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        per = dict.fromkeys(COMPONENTS, 0.0)
        for name, pid in self._roots():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                # The load generator's children are the servers themselves: counted apart.
                children = [] if name == "load_generator" else root.children(recursive=True)
                for proc in [root, *children]:
                    with contextlib.suppress(psutil.Error):
                        t = proc.cpu_times()
                        per[name] += t.user + t.system
        return [time.monotonic(), busy, sum(per.values()), *per.values()]

    @staticmethod
    def add(acc: list[float], before: list[float], after: list[float]) -> None:
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            acc[i] += b - a

    @staticmethod
    def report(acc: list[float]) -> dict[str, Any]:
        if not acc[0]:
            return {}
        scale = 100 / (acc[0] * (os.cpu_count() or 1))  # % of the whole machine
        return {
            "machine_cpu_busy_pct": round(acc[1] * scale, 1),
            "bench_cpu_pct": round(acc[2] * scale, 1),
            "foreign_cpu_pct": round(max(0.0, acc[1] - acc[2]) * scale, 1),
            "bench_cpu_pct_by_process": {
                name: round(max(0.0, value) * scale, 1)
                for name, value in zip(COMPONENTS, acc[3:], strict=True)
            },
        }


class Progress:
    """A one-line progress bar (carriage return on a terminal, a line every 5 s otherwise)."""

    def __init__(self, name: str, duration: float) -> None:
        self.name = name
        self.duration = duration
        self.started = time.monotonic()
        self.done = 0
        self.errors = 0
        self.tty = sys.stderr.isatty()
        self._last_line = 0.0

    def tick(self, ok: bool) -> None:
        self.done += 1
        self.errors += 0 if ok else 1
        self.render()

    def render(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and (now - self._last_line) < (0.2 if self.tty else 5.0):
            return
        self._last_line = now
        elapsed = now - self.started
        frac = min(1.0, elapsed / self.duration) if self.duration else 1.0
        bar = "#" * int(frac * 24)
        rate = self.done / elapsed if elapsed else 0.0
        line = (
            f"{self.name:<24} [{bar:<24}] {elapsed:5.1f}/{self.duration:.0f}s "
            f"{self.done:6d} calls {rate:6.1f}/s errors {self.errors}"
        )
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


@dataclass
class Phase:
    name: str
    kind: str  # baseline | notify | billed | hot | latency
    batched: bool
    concurrency: int | None
    target_rate: float | None
    elapsed_s: float = 0.0
    samples: list[CallSample] = field(default_factory=list)
    cpu_acc: list[float] = field(default_factory=lambda: [0.0] * (3 + len(COMPONENTS)))
    rounds: int = 0

    @property
    def ok(self) -> list[CallSample]:
        return [s for s in self.samples if s.ok]

    def calls_per_s(self) -> float:
        return len(self.ok) / self.elapsed_s if self.elapsed_s else 0.0

    def public(self) -> dict[str, Any]:
        ok = self.ok
        errors: dict[str, int] = {}
        for sample in self.samples:
            if not sample.ok:
                key = (sample.error or "?").split(":")[0]
                errors[key] = errors.get(key, 0) + 1
        return {
            "name": self.name,
            "kind": self.kind,
            "batched": self.batched,
            "usage_signals_per_call": 1 if self.batched else 10,
            "concurrency": self.concurrency,
            "target_rate_calls_per_s": self.target_rate,
            "elapsed_s": round(self.elapsed_s, 2),
            "rounds": self.rounds,
            "cpu": CpuMeter.report(self.cpu_acc),
            "calls_ok": len(ok),
            "calls_failed": len(self.samples) - len(ok),
            "errors": errors,
            "client_retries": sum(s.retries for s in self.samples),
            "calls_per_s": round(self.calls_per_s(), 2),
            "authorize": percentiles([s.authorize_s for s in ok if s.authorize_s]).public(),
            "hangup_to_result": percentiles(
                [s.hangup_to_result_s for s in ok if s.hangup_to_result_s]
            ).public(),
            "hangup_to_balance": percentiles(
                [s.hangup_to_balance_s for s in ok if s.hangup_to_balance_s]
            ).public(),
        }


class Bench:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.rng = random.Random(args.seed)
        self.plans: list[CallPlan] = []  # every billed call, for the expected-total check
        self.billed: BillingClient | None = None
        self.baseline: BillingClient | None = None
        self.notify: BillingClient | None = None
        self.accounts: list[str] = []
        self.hot_account = ""
        self.latency_accounts: list[str] = []
        self._seq = 0
        self.cpu = CpuMeter(stack)

    def _call_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self.args.seed}-{self._seq:07d}"

    async def setup(self) -> None:
        from db.session import get_sessionmaker

        factory = get_sessionmaker(self.stack.database_url)
        n = self.args.concurrency
        self.accounts = seed_accounts(factory, n, top_up_paisa=TOP_UP_PAISA, prefix="bench-acc")
        self.hot_account = seed_accounts(factory, 1, top_up_paisa=TOP_UP_PAISA, prefix="bench-hot")[
            0
        ]
        self.latency_accounts = seed_accounts(
            factory, self.args.latency_accounts, top_up_paisa=TOP_UP_PAISA, prefix="bench-lat"
        )
        self.billed = await BillingClient.connect(self.stack.temporal.address)
        self.baseline = await BillingClient.connect(
            self.stack.temporal.address, task_queue=BASELINE_TASK_QUEUE
        )
        self.notify = BillingClient(self.baseline.client, task_queue=NOTIFY_TASK_QUEUE)

    def _plan(self, kind: str, account_id: str) -> CallPlan:
        plan = make_plan(self._call_id(kind), account_id, self.rng)
        if kind in ("billed", "hot", "lat"):
            self.plans.append(plan)
        return plan

    async def closed_loop(
        self, kind: str, batched: bool, duration: float, phase: Phase | None = None
    ) -> Phase:
        """One round of a closed-loop case; pass `phase` to add a round to it."""
        client = {"baseline": self.baseline, "notify": self.notify}.get(kind, self.billed)
        assert client is not None
        name = f"{KIND_LABELS[kind]} {'batched' if batched else 'unbatched'}"
        phase = phase or Phase(name, kind, batched, self.args.concurrency, None)
        phase.rounds += 1
        progress = Progress(f"{name} #{phase.rounds}", duration)
        first = len(phase.samples)
        started = time.monotonic()
        deadline = started + duration

        async def loop(index: int) -> None:
            account = self.hot_account if kind == "hot" else self.accounts[index]
            while time.monotonic() < deadline and len(phase.samples) - first < MAX_CALLS_PER_PHASE:
                plan = self._plan(kind, account)
                sample = await drive_call(client, plan, batched=batched, timeout=60)
                phase.samples.append(sample)
                progress.tick(sample.ok)

        cpu_before = self.cpu.sample()
        await asyncio.gather(*(loop(i) for i in range(self.args.concurrency)))
        phase.elapsed_s += time.monotonic() - started
        CpuMeter.add(phase.cpu_acc, cpu_before, self.cpu.sample())
        progress.render(final=True)
        return phase

    async def open_loop(
        self, rate: float, duration: float, batched: bool, kind: str = "billed"
    ) -> Phase:
        """Calls arrive at a fixed rate; each takes an idle account, so its expected balance
        after hangup is exact, and (billed) polls the balance endpoint until it shows. The
        baseline variant gives the platform's floor at the same rate (it has no balance)."""
        client = self.billed if kind == "billed" else self.baseline
        assert client is not None
        billed = kind == "billed"
        name = f"{'latency' if billed else 'baseline latency'} @{rate:.1f}/s"
        kind_name = "latency" if billed else "baseline-latency"
        phase = Phase(name, kind_name, batched, None, round(rate, 2))
        progress = Progress(name, duration)
        idle: asyncio.Queue[str] = asyncio.Queue()
        expected: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {self.stack.admin_api_key}"}
        skipped = 0
        async with httpx.AsyncClient(base_url=self.stack.api_url, headers=headers) as http:
            for account in self.latency_accounts:
                body = (await http.get(f"/v1/accounts/{account}/balance")).json()
                expected[account] = int(body["available_paisa"])
                idle.put_nowait(account)

            def probe(account: str, want: int) -> Callable[[], Awaitable[bool]]:
                async def visible() -> bool:
                    response = await http.get(f"/v1/accounts/{account}/balance", timeout=5)
                    body = response.json()
                    return bool(
                        response.status_code == 200
                        and body["available_paisa"] == want
                        and body["reserved_paisa"] == 0
                    )

                return visible

            async def one() -> None:
                account = idle.get_nowait()
                sample: CallSample | None = None
                try:
                    plan = self._plan("lat" if billed else "baseline", account)
                    want = expected[account] - plan.expected_total_paisa
                    sample = await drive_call(
                        client,
                        plan,
                        batched=batched,
                        timeout=60,
                        balance_visible=probe(account, want) if billed else None,
                        poll_interval=self.args.poll_interval,
                    )
                    if sample.ok:
                        expected[account] = want
                    phase.samples.append(sample)
                    progress.tick(sample.ok)
                finally:
                    if sample is not None and sample.ok:
                        idle.put_nowait(account)  # a failed call leaves its account unknown

            tasks: list[asyncio.Task[None]] = []
            cpu_before = self.cpu.sample()
            started = time.monotonic()
            interval = 1.0 / rate
            count = 0
            while count < MAX_CALLS_PER_PHASE:
                at = started + count * interval
                if at >= started + duration:
                    break
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                count += 1
                if idle.empty():
                    skipped += 1
                    continue
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks, return_exceptions=True)
            phase.elapsed_s = time.monotonic() - started
            CpuMeter.add(phase.cpu_acc, cpu_before, self.cpu.sample())
        progress.render(final=True)
        if skipped:
            print(f"  ({skipped} arrivals skipped: no idle account)", file=sys.stderr)
        return phase

    async def warmup(self) -> None:
        assert self.billed and self.baseline and self.notify
        for client, kind in (
            (self.baseline, "baseline"),
            (self.notify, "notify"),
            (self.billed, "billed"),
        ):
            plans = [self._plan(kind, self.accounts[i]) for i in range(self.args.concurrency)]
            await asyncio.gather(*(drive_call(client, p, batched=True, timeout=60) for p in plans))

    def verify(self) -> dict[str, Any]:
        """Invariant checker plus: every billed call charged exactly what was generated."""
        from sqlalchemy import text

        from db.session import get_sessionmaker
        from ledger.invariants import check_ledger

        with get_sessionmaker(self.stack.database_url)() as session:
            violations = check_ledger(session)
            charged: dict[str, int] = dict(
                session.execute(
                    text(
                        "SELECT reference, -amount_paisa FROM ledger_transactions "
                        "WHERE kind = 'call_charge'"
                    )
                ).all()
            )
            finalized = session.execute(
                text("SELECT count(*) FROM calls WHERE status = 'finalized'")
            ).scalar_one()
            active_holds = session.execute(
                text("SELECT count(*) FROM holds WHERE status = 'active'")
            ).scalar_one()
        expected_total = sum(p.expected_total_paisa for p in self.plans)
        mismatched = [
            p.call_id for p in self.plans if charged.get(p.call_id, 0) != p.expected_total_paisa
        ]
        return {
            "invariant_violations": [str(v) for v in violations[:20]],
            "invariant_violation_count": len(violations),
            "billed_calls_generated": len(self.plans),
            "calls_finalized": int(finalized),
            "active_holds": int(active_holds),
            "expected_charged_paisa": expected_total,
            "ledger_charged_paisa": int(sum(charged.values())),
            "calls_with_wrong_charge": len(mismatched),
        }


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


def summarize(phases: list[Phase], verification: dict[str, Any]) -> dict[str, Any]:
    by_name = {p.name: p for p in phases}
    summary: dict[str, Any] = {}
    for mode in ("unbatched", "batched"):
        base = by_name[f"baseline {mode}"].calls_per_s()
        notify = by_name[f"baseline+notify {mode}"].calls_per_s()
        billed = by_name[f"billed {mode}"].calls_per_s()
        hot = by_name[f"hot {mode}"].calls_per_s()
        summary[mode] = {
            "baseline_calls_per_s": round(base, 2),
            "baseline_notify_calls_per_s": round(notify, 2),
            "notify_over_baseline": ratio(notify, base),
            "billed_calls_per_s": round(billed, 2),
            "hot_account_calls_per_s": round(hot, 2),
            "billed_over_baseline": ratio(billed, base),
            "hot_over_baseline": ratio(hot, base),
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
    auth_p99 = latency["authorize"]["p99_ms"]
    bal_p99 = latency["hangup_to_balance"]["p99_ms"]
    summary["targets"] = {
        "hangup_to_balance_p99_le_250ms": {
            "measured_ms": bal_p99,
            "met": bal_p99 is not None and bal_p99 <= 250,
        },
        "authorize_p99_le_100ms_at_half_peak": {
            "measured_ms": auth_p99,
            "met": auth_p99 is not None and auth_p99 <= 100,
        },
        "billed_ge_0_8_baseline_batched": {
            "measured_ratio": summary["batched"]["billed_over_baseline"],
            "met": (summary["batched"]["billed_over_baseline"] or 0) >= 0.8,
        },
        "billed_ge_0_8_baseline_unbatched": {
            "measured_ratio": summary["unbatched"]["billed_over_baseline"],
            "met": (summary["unbatched"]["billed_over_baseline"] or 0) >= 0.8,
        },
        "ledger_consistent": {
            "met": verification["invariant_violation_count"] == 0
            and verification["calls_with_wrong_charge"] == 0
            and verification["active_holds"] == 0
        },
    }
    return summary


def print_table(phases: list[Phase], summary: dict[str, Any], verification: dict[str, Any]) -> None:
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
    print()
    for name, target in summary["targets"].items():
        measured = target.get("measured_ms", target.get("measured_ratio", ""))
        print(f"  {'MET ' if target['met'] else 'MISS'}  {name}  {measured}")
    print(
        f"\nledger: {verification['invariant_violation_count']} invariant violations, "
        f"{verification['calls_with_wrong_charge']} calls charged differently than generated, "
        f"{verification['active_holds']} active holds; charged "
        f"{verification['ledger_charged_paisa']} paisa, expected "
        f"{verification['expected_charged_paisa']}"
    )


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
        {"baseline": "tab:grey", "notify": "tab:olive", "billed": "tab:blue", "hot": "tab:orange"}[
            p.kind
        ]
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


async def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    loadavg_at_start = [round(x, 2) for x in os.getloadavg()]
    bench = Bench(stack, args)
    await bench.setup()
    print("warming up …", file=sys.stderr)
    await bench.warmup()
    phases: list[Phase] = []
    # Rounds interleave the cases (baseline, billed, hot, baseline, ...) so a slow spell on the
    # machine hits all of them alike and the ratios stay fair.
    per_round = args.duration / args.rounds
    for batched in (False, True):
        cases: dict[str, Phase] = {}
        for _ in range(args.rounds):
            for kind in ("baseline", "notify", "billed", "hot"):
                cases[kind] = await bench.closed_loop(kind, batched, per_round, cases.get(kind))
        phases.extend(cases.values())
    peak = max(p.calls_per_s() for p in phases if p.kind == "billed" and p.batched)
    rate = args.latency_rate or max(0.5, peak * args.latency_load)
    phases.append(await bench.open_loop(rate, args.latency_duration, batched=True, kind="baseline"))
    phases.append(await bench.open_loop(rate, args.latency_duration, batched=True))
    await asyncio.sleep(1.0)
    verification = bench.verify()
    summary = summarize(phases, verification)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(sys.argv[1:]),
        "machine": {**machine_info(), "loadavg_at_start": loadavg_at_start},
        "settings": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "latency_duration_s": args.latency_duration,
            "latency_load_fraction_of_peak": args.latency_load,
            "latency_rate_calls_per_s": round(rate, 2),
            "poll_interval_s": args.poll_interval,
            "temporal_db": args.temporal_db,
            "billing_workers": args.workers,
            "usage_events_per_call": 10,
            "seed": args.seed,
        },
        "summary": summary,
        "phases": [p.public() for p in phases],
        "verification": verification,
        "_phases": phases,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per throughput case")
    parser.add_argument("--concurrency", type=int, default=20, help="closed-loop concurrency")
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds per throughput case"
    )
    parser.add_argument("--latency-duration", type=float, default=40.0)
    parser.add_argument(
        "--latency-load", type=float, default=0.5, help="latency-phase rate as a fraction of peak"
    )
    parser.add_argument("--latency-rate", type=float, default=None, help="fixed calls/s instead")
    parser.add_argument("--latency-accounts", type=int, default=60)
    parser.add_argument("--poll-interval", type=float, default=0.02, help="balance poll, seconds")
    parser.add_argument(
        "--temporal-db",
        choices=("file", "memory"),
        default="file",
        help="dev server on a SQLite file (persistent, as `make serve`) or in memory",
    )
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to use")
    parser.add_argument("--workers", type=int, default=1, help="billing worker processes")
    parser.add_argument("--output", default=str(REPO_ROOT / "docs" / "benchmarks"))
    parser.add_argument("--name", default="results", help="file stem for the JSON and PNG")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600 or not 1 <= args.concurrency <= 200:
        parser.error("--duration must be in (0, 600] and --concurrency in [1, 200]")
    if not 1 <= args.workers <= 8:
        parser.error("--workers must be in [1, 8]")
    if not 1 <= args.rounds <= 10 or not 0 < args.latency_duration <= 600:
        parser.error("--rounds must be in [1, 10] and --latency-duration in (0, 600]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    with tempfile.TemporaryDirectory(prefix="billing-bench-") as work_dir:
        stack = Stack(
            work_dir,
            temporal_db=args.temporal_db,
            with_api=True,
            with_baseline=True,
            database_url=args.database_url,
            workers=args.workers,
        )
        print(f"starting the stack in {work_dir} …", file=sys.stderr)
        with stack:
            try:
                results = asyncio.run(run(stack, args))
            except BaseException:
                print(stack.logs(), file=sys.stderr)
                raise
    phases = results.pop("_phases")
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{args.name}.json"
    png_path = out / f"{args.name}.png"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    plot(phases, png_path)
    print_table(phases, results["summary"], results["verification"])
    print(f"\nwrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
