"""Live-call capacity, the shape production has: N calls at once, each sending one usage batch a
second (one `usage` signal with the second's llm/stt/tts/sip events) for `duration` seconds, then
hangup. A level holds when every call completes, hangup → balance visible (billed; the baseline:
hangup → result) stays under 1 s at p99, and there is no signal backlog: every batch's signal is
accepted within 1 s of its slot (p99) and every call's result counts every event sent.

The search doubles N from `start` while the level holds (up to `max`), then bisects (up to
BISECT_STEPS times, until the gap is within BISECT_UNTIL) between the last level that held and
the first that did not. The balance is polled straight from the accounts table every 20 ms by
one `BalancePoller` for all calls (HTTP polls from hundreds of calls would load the API more
than the calls do).

Running holds cost: `billed-no-holds` is the billed workflow with its usage checkpoints (and so
its running holds) turned off (bench.no_holds), on its own worker. It runs at the billed
search's levels, not a search of its own: the largest level billed held and the first it did
not (`compare_without_holds`); the CPU of the billing workers and PostgreSQL per call-second is
compared at the level both ran.

The ledger floor (`ledger-floor`, bench.baseline's LedgerFloorCallWorkflow: the baseline plus the
hold, the usage checkpoints and the charge in hand-written SQL) runs at the level the target asks
for, ⌈0.9 × the baseline's N⌉, and if it fails there at the first level billed failed at
(`floor_at_target`): whether any billing that writes the ledger as the contract asks, one
transaction a write, could reach the target on this machine."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.load import BalancePoller, CallPlan, price_events, seed_accounts
from bench.measure import COMPONENTS, CpuMeter, quiesce_collector
from db.async_pool import libpq_url
from domain.contracts import call_workflow_id
from orchestrator_client import BillingClient

LIMIT_S = 1.0
BILLED_KINDS = ("billed", "billed-no-holds")  # charged calls: balance polled, plans verified
WITHOUT_HOLDS = "billed-no-holds"
LEDGER_FLOOR = "ledger-floor"
TARGET_RATIO = 0.9  # live calls: billed N ≥ 0.9 × the baseline's N (issue 16)
MAX_HOLDS_COST = 0.1  # running holds may cost at most 10 % of billed capacity (issue 12)
# Halvings between the last level that held and the first that did not, while they are more
# than BISECT_UNTIL of the held level apart: doubling alone finds N within a factor of 2, four
# halvings within about 5 %, finer than the 10 % the billed ÷ baseline line decides (two, up to
# and including results-2026-12-01h, left 12.5–25 %: there billed 175–199 against a baseline of
# 200–249 could read anything from 0.70 to 1.0).
BISECT_STEPS = 4
BISECT_UNTIL = 0.05
TOP_UP = 500_000_000


def second_of_usage(call_id: str, second: int, rng: random.Random) -> list[dict[str, Any]]:
    llm = {"input_tokens": rng.randint(200, 1500), "output_tokens": rng.randint(20, 150)}
    return [
        {"event_id": f"{call_id}-{second}-llm", "component": "llm",
         "sku": "openai/gpt-4o-mini", **llm},
        {"event_id": f"{call_id}-{second}-stt", "component": "stt", "sku": "deepgram/nova-3",
         "audio_seconds": 1},
        {"event_id": f"{call_id}-{second}-tts", "component": "tts",
         "sku": "elevenlabs/flash-v2", "characters": rng.randint(5, 25)},
        {"event_id": f"{call_id}-{second}-sip", "component": "sip",
         "sku": "plivo/in-outbound", "seconds": 1},
    ]  # fmt: skip


@dataclass
class Trial:
    kind: str
    calls: int
    duration_s: float
    ok: int = 0
    failed: int = 0
    events_lost: int = 0
    hangup: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    authorize: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds by process, unrounded
    sample_call: str | None = None  # a call that completed, to count its history events

    def p99(self, values: list[float]) -> float | None:
        from bench.load import percentiles

        return percentiles(values).p99_ms

    @property
    def held(self) -> bool:
        hangup, lag = self.p99(self.hangup), self.p99(self.lag)
        return (
            self.failed == 0
            and self.events_lost == 0
            and hangup is not None
            and hangup < LIMIT_S * 1000
            and (lag or 0) < LIMIT_S * 1000
        )

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "calls": self.calls,
            "duration_s": self.duration_s,
            "ok": self.ok,
            "failed": self.failed,
            "errors": self.errors,
            "events_lost": self.events_lost,
            "hangup_p99_ms": self.p99(self.hangup),
            "signal_lag_p99_ms": self.p99(self.lag),
            "authorize_p99_ms": self.p99(self.authorize),
            "held": self.held,
            "cpu": self.cpu,
            "cpu_ms_per_call_second": self.cpu_ms_per_call_second(),
        }

    def cpu_ms_per_call_second(self) -> dict[str, float]:
        """CPU milliseconds per second of a live call: the billing worker (whichever ran the
        calls), PostgreSQL, Temporal, and the first two together."""
        call_seconds = self.ok * self.duration_s
        if not call_seconds or not self.cpu_s:
            return {}
        worker = self.cpu_s.get("worker", 0.0) + self.cpu_s.get("no_holds_worker", 0.0)
        postgres = self.cpu_s.get("postgres", 0.0)
        parts = {
            "billing_worker": worker,
            "postgres": postgres,
            "temporal": self.cpu_s.get("temporal", 0.0),
            "worker_and_postgres": worker + postgres,
        }
        return {name: round(value * 1000 / call_seconds, 2) for name, value in parts.items()}


class Capacity:
    def __init__(
        self,
        billed: BillingClient,
        baseline: BillingClient,
        database_url: str,
        cpu: CpuMeter,
        seed: int,
        without_holds: BillingClient | None = None,
        ledger_floor: BillingClient | None = None,
    ) -> None:
        self.clients = {"billed": billed, "baseline": baseline}
        if without_holds is not None:
            self.clients[WITHOUT_HOLDS] = without_holds
        if ledger_floor is not None:
            self.clients[LEDGER_FLOOR] = ledger_floor
        self.url = database_url
        self.cpu = cpu
        self.seed = seed
        self.rng = random.Random(seed)
        self.accounts: list[str] = []
        self.plans: list[CallPlan] = []  # every billed call, for the run's final check
        self._trials = 0

    async def seed_accounts(self, count: int) -> None:
        from db.session import get_sessionmaker

        factory = get_sessionmaker(self.url)
        self.accounts = await asyncio.to_thread(
            seed_accounts, factory, count, top_up_paisa=TOP_UP, prefix=f"cap-{self.seed}"
        )

    async def trial(self, kind: str, calls: int, duration: float) -> Trial:
        self._trials += 1
        client = self.clients[kind]
        trial = Trial(kind, calls, duration)
        poller = BalancePoller(self.url)
        stop = asyncio.Event()
        balances: dict[str, int] = {}
        billed = kind in BILLED_KINDS
        if billed:
            async with await psycopg.AsyncConnection.connect(libpq_url(self.url)) as conn:
                cursor = await conn.execute(
                    "SELECT id, paid_paisa + promo_paisa FROM accounts WHERE id = ANY(%s)",
                    (self.accounts[:calls],),
                )
                balances = dict(await cursor.fetchall())

        async def one(index: int) -> None:
            await asyncio.sleep(index / calls)  # starts spread over the first second
            call_id = f"cap-{kind}-{self.seed}-{self._trials}-{index}"
            account = self.accounts[index]
            events: list[dict[str, Any]] = []
            try:
                t0 = time.monotonic()
                decision = await client.authorize(call_id, account, "phone")
                trial.authorize.append(time.monotonic() - t0)
                assert decision.authorized, decision.reason
                started = time.monotonic()
                for second in range(int(duration)):
                    slot = started + second + 1
                    await asyncio.sleep(max(0.0, slot - time.monotonic()))
                    batch = second_of_usage(call_id, second, self.rng)
                    await client.report_usage(call_id, {"events": batch})
                    trial.lag.append(max(0.0, time.monotonic() - slot))
                    events.extend(batch)
                expected = price_events(events, "phone")
                if billed:
                    self.plans.append(
                        CallPlan(call_id, account, "phone", "completed", events, expected)
                    )
                    visible = poller.wait(account, balances[account] - expected)
                t_hangup = time.monotonic()
                await client.hangup(call_id, "completed")
                if billed:
                    trial.hangup.append(await asyncio.wait_for(visible, 30) - t_hangup)
                result = await asyncio.wait_for(client.result(call_id), 30)
                if not billed:
                    trial.hangup.append(time.monotonic() - t_hangup)
                if result.usage_event_count != len(events):
                    trial.events_lost += 1
                trial.ok += 1
                trial.sample_call = call_id
            except Exception as exc:
                trial.failed += 1
                key = type(exc).__name__
                trial.errors[key] = trial.errors.get(key, 0) + 1

        quiesce_collector()
        before = self.cpu.sample()
        poll = asyncio.create_task(poller.run(stop))
        await asyncio.gather(*(one(i) for i in range(calls)))
        stop.set()
        await poll
        acc = [0.0] * len(before)
        CpuMeter.add(acc, before, self.cpu.sample())
        trial.cpu = CpuMeter.report(acc)
        trial.cpu_s = dict(zip(COMPONENTS, acc[3:], strict=True))
        return trial

    async def _run(self, kind: str, level: int, duration: float, trials: list[Trial]) -> Trial:
        import sys

        trial = await self.trial(kind, level, duration)
        trials.append(trial)
        print(f"  capacity {kind} N={level}: {trial.public()}", file=sys.stderr)
        return trial

    async def search(
        self, kind: str, start: int, maximum: int, duration: float, bisect: bool
    ) -> tuple[int, list[Trial]]:
        """The largest N that held (0 if even `start` did not), and every trial run."""
        trials: list[Trial] = []
        held, failed_at, level = 0, 0, start
        while level <= maximum:
            trial = await self._run(kind, level, duration, trials)
            if not trial.held:
                failed_at = level
                break
            held, level = level, level * 2
        for _ in range(BISECT_STEPS if bisect else 0):
            if not (held and failed_at and failed_at - held > max(2, held * BISECT_UNTIL)):
                break
            middle = (held + failed_at) // 2
            if (await self._run(kind, middle, duration, trials)).held:
                held = middle
            else:
                failed_at = middle
        return held, trials

    async def compare_without_holds(
        self, billed_trials: list[Trial], duration: float
    ) -> tuple[dict[str, Any], list[Trial]]:
        """The billed workflow without running holds at the billed search's levels: the largest
        that held (H) and the first above it that did not (F, if the search reached one). If it
        holds F while billed held only H < 0.9 F, billed gets one more try at ⌈0.9 F⌉, the level
        the target asks for, so a coarse search step alone cannot miss it."""
        import math

        held = [t.calls for t in billed_trials if t.held]
        if not held:
            return {"error": "no billed level held"}, []
        with_holds = max(held)
        above = [t.calls for t in billed_trials if not t.held and t.calls > with_holds]
        levels = [with_holds, *([min(above)] if above else [])]
        trials: list[Trial] = []
        without_holds = 0
        without_failed_at: int | None = None
        for level in levels:
            if not (await self._run(WITHOUT_HOLDS, level, duration, trials)).held:
                without_failed_at = level
                break
            without_holds = level
        billed_extra: list[Trial] = []
        if without_holds and with_holds < (1 - MAX_HOLDS_COST) * without_holds:
            level = math.ceil((1 - MAX_HOLDS_COST) * without_holds)  # > with_holds here
            retry = await self._run("billed", level, duration, billed_extra)
            if retry.held:
                with_holds = level
        same_level = {
            kind: next((t for t in ts if t.calls == levels[0]), None)
            for kind, ts in (("billed", billed_trials), (WITHOUT_HOLDS, trials))
        }
        cpu = {kind: t.cpu_ms_per_call_second() for kind, t in same_level.items() if t}
        out: dict[str, Any] = {
            "levels": levels,
            "billed_max_calls": with_holds,
            "without_holds_max_calls": without_holds,
            "without_holds_failed_at": without_failed_at,
            "billed_over_without_holds": holds_ratio(with_holds, without_holds, without_failed_at),
            "cpu_level": levels[0],
            "cpu_ms_per_call_second": cpu,
            "trials": [t.public() for t in trials],
            "billed_extra_trials": [t.public() for t in billed_extra],
        }
        a, b = (cpu.get(k, {}).get("worker_and_postgres") for k in ("billed", WITHOUT_HOLDS))
        if a and b:
            out["worker_and_postgres_cpu_with_over_without"] = round(a / b, 3)
        return out, trials + billed_extra

    async def floor_at_target(
        self, baseline_max: int, billed_trials: list[Trial], duration: float
    ) -> dict[str, Any]:
        """The ledger floor at ⌈0.9 × the baseline's N⌉; where it fails there, at the first
        level billed failed at below that too (does the floor go further than billed?)."""
        import math

        if not baseline_max:
            return {"error": "no baseline level held"}
        target = math.ceil(TARGET_RATIO * baseline_max)
        failed = [t.calls for t in billed_trials if not t.held and t.calls < target]
        levels = [target, *([min(failed)] if failed else [])]
        trials: list[Trial] = []
        for level in levels:
            if (await self._run(LEDGER_FLOOR, level, duration, trials)).held:
                break
        held = [t.calls for t in trials if t.held]
        return {
            "target_level": target,
            "holds_target": trials[0].held,
            "max_calls_tried_that_held": max(held) if held else None,
            "trials": [t.public() for t in trials],
        }


def holds_ratio(with_holds: int, without_holds: int, without_failed_at: int | None) -> float | None:
    """Billed N with running holds ÷ N without them. When the variant without holds already
    failed at a level billed held, its N is below that level: the ratio is at least
    with ÷ (failed level − 1), which is what is returned (a lower bound above 1)."""
    if without_holds:
        return round(with_holds / without_holds, 3)
    if without_failed_at is not None and 1 < without_failed_at <= with_holds:
        return round(with_holds / (without_failed_at - 1), 3)
    return None


# A history shard serializes its workflows' writes; this is the planning figure the model uses
# per shard (an assumption, not measured here: Temporal on PostgreSQL, conservative).
EVENTS_PER_SHARD_PER_S = 100
UTILIZATION = 0.7  # plan every process at 70 % of its core


def model(billed: dict[str, Any], cpus: int, calls: int = 10_000) -> dict[str, Any]:
    """Cores per process type, worker processes, and history shards for `calls` concurrent calls,
    from the largest billed level that held (its CPU by process and history events per call)."""
    import math

    trial = next(
        (t for t in sorted(billed.get("trials", []), key=lambda t: -t["calls"]) if t["held"]),
        None,
    )
    if trial is None or not trial.get("cpu"):
        return {"error": "no billed level held"}
    # The processes production runs (not the load generator or the baseline worker).
    per_process = {
        k: v
        for k, v in trial["cpu"]["bench_cpu_pct_by_process"].items()
        if k in ("worker", "api", "temporal", "postgres")
    }
    n = trial["calls"]
    cores_per_call = {k: v / 100 * cpus / n for k, v in per_process.items()}
    need = {k: round(v * calls / UTILIZATION, 1) for k, v in cores_per_call.items()}
    events = billed.get("history_events_per_call_second")
    shards = None
    if events:
        raw = calls * events / EVENTS_PER_SHARD_PER_S
        shards = 2 ** math.ceil(math.log2(max(1.0, raw)))
    return {
        "from_level": n,
        "cores_per_1000_calls": {k: round(v * 1000, 3) for k, v in cores_per_call.items()},
        "calls": calls,
        "cores_needed_at_70pct": need,
        "worker_processes": math.ceil(need.get("worker", 0.0)),  # one core each
        "api_processes": math.ceil(need.get("api", 0.0)),
        "history_events_per_call_second": events,
        "history_shards": shards,
        "assumptions": {
            "utilization": UTILIZATION,
            "history_events_per_shard_per_s": EVENTS_PER_SHARD_PER_S,
        },
    }


async def history_events_per_second(client: BillingClient, call_id: str, seconds: float) -> float:
    """History events one finished call wrote, per second of the call."""
    handle = client.client.get_workflow_handle(call_workflow_id(call_id))
    history = await handle.fetch_history()
    return round(len(history.events) / max(1.0, seconds), 2)
