"""Measuring tools of the benchmark: the CPU meter (ours vs foreign), a progress line, a phase of
driven calls with its percentiles, and generic closed/open loops for operations that are not
calls (ledger transactions, HTTP requests)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.load import CallSample, percentiles
from bench.stack import Stack

COMPONENTS = (
    "load_generator", "worker", "api", "baseline_worker", "no_holds_worker", "temporal", "postgres",
)  # fmt: skip


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
            ("no_holds_worker", self.stack.no_holds),
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


MAX_OPS_PER_PHASE = 2_000_000


@dataclass
class OpPhase:
    """A phase of operations that are not calls: ledger transactions or HTTP requests. One op
    may carry several items (a batch of charges); rates are items per second."""

    name: str
    kind: str  # ledger | raw | api
    concurrency: int | None
    target_rate: float | None = None
    items_per_op: int = 1
    elapsed_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_acc: list[float] = field(default_factory=lambda: [0.0] * (3 + len(COMPONENTS)))

    def per_s(self) -> float:
        done = len(self.latencies) * self.items_per_op
        return done / self.elapsed_s if self.elapsed_s else 0.0

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "concurrency": self.concurrency,
            "target_rate_per_s": self.target_rate,
            "items_per_op": self.items_per_op,
            "elapsed_s": round(self.elapsed_s, 2),
            "ok": len(self.latencies),
            "failed": sum(self.errors.values()),
            "errors": self.errors,
            "per_s": round(self.per_s(), 1),
            "latency": percentiles(self.latencies).public(),
            "cpu": CpuMeter.report(self.cpu_acc),
        }


Op = Callable[[int, int], Awaitable[None]]  # (worker index, sequence number)


async def _timed(phase: OpPhase, op: Op, worker: int, seq: int) -> None:
    started = time.monotonic()
    try:
        await op(worker, seq)
    except Exception as exc:
        key = type(exc).__name__ + (f": {str(exc)[:80]}" if str(exc) else "")
        phase.errors[key] = phase.errors.get(key, 0) + 1
        return
    phase.latencies.append(time.monotonic() - started)


def quiesce_collector() -> None:
    """Before a measured phase: collect, then freeze what the load generator holds so far (the
    plans and latencies of every earlier phase), so its garbage collector does not stop the
    generator mid-phase to scan them: a pause here is timed as the server's latency (a 0.2–0.4 s
    tail in an open loop late in a run, none when the same case ran alone)."""
    gc.collect()
    gc.freeze()


async def closed_loop(phase: OpPhase, duration: float, op: Op, cpu: CpuMeter) -> OpPhase:
    """`phase.concurrency` workers, each starting its next op when the previous one is done."""
    assert phase.concurrency
    quiesce_collector()
    progress = Progress(phase.name, duration)
    deadline = time.monotonic() + duration

    async def worker(index: int) -> None:
        seq = 0
        while time.monotonic() < deadline and len(phase.latencies) < MAX_OPS_PER_PHASE:
            await _timed(phase, op, index, seq)
            seq += 1
            progress.done = len(phase.latencies) * phase.items_per_op
            progress.render()

    before = cpu.sample()
    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(phase.concurrency)))
    phase.elapsed_s = time.monotonic() - started
    CpuMeter.add(phase.cpu_acc, before, cpu.sample())
    progress.render(final=True)
    return phase


async def open_loop(phase: OpPhase, rate: float, duration: float, op: Op, cpu: CpuMeter) -> OpPhase:
    """Ops arrive at `rate` per second whatever the answers do (latency under a given load)."""
    phase.target_rate = round(rate, 1)
    quiesce_collector()
    progress = Progress(phase.name, duration)
    tasks: list[asyncio.Task[None]] = []
    before = cpu.sample()
    started = time.monotonic()
    count = 0
    while count < MAX_OPS_PER_PHASE and count / rate < duration:
        await asyncio.sleep(max(0.0, started + count / rate - time.monotonic()))
        tasks.append(asyncio.create_task(_timed(phase, op, 0, count)))
        count += 1
        progress.done = len(phase.latencies)
        progress.render()
    await asyncio.gather(*tasks)
    phase.elapsed_s = time.monotonic() - started
    CpuMeter.add(phase.cpu_acc, before, cpu.sample())
    progress.render(final=True)
    return phase
