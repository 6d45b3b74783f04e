"""The benchmark: `python -m bench.run` (`make bench`); `--quick` for a smoke run.

Starts a private stack (PostgreSQL, Temporal dev server, billing worker(s), API with
`--api-workers` uvicorn processes, baseline worker) on 127.0.0.1, then runs these groups
(`--only` picks some):

- `calls`: closed-loop throughput (baseline, baseline+notify, baseline+ledger, billed spread,
  billed hot account; unbatched and batched usage, interleaved rounds) and the open-loop latency
  phase at half of the billed batched peak (bench.calls, bench.baseline);
- `ledger`: the ledger against a raw psycopg implementation of the same transactions, no HTTP,
  no Temporal: the osmAPI charge spread and on one hot account, a call's authorize + capture
  (bench.ledger_cases, bench.raw_ledger);
- `api`: the osmAPI over HTTP: `POST /v1/api-usage` spread and hot, `/authorize` at its peak
  and at half of it (for `--latency-duration`, as the calls' latency phase), the batch form;
  whether any of it touched Temporal (bench.osmapi); `--profile` adds a py-spy top-20 of the API
  processes under the spread charge load;
- `capacity`: live-call capacity, billed and baseline, the billed workflow without running holds
  at the billed levels (their cost, bench.no_holds), the ledger floor at the level the target
  asks for (bench.baseline), and the capacity model (bench.capacity);

then the ledger invariant checker over everything the run wrote, the charged totals against what
the load generator priced, and every target of issue 16 with met / missed (bench.targets).
Writes `<output>/<name>.json` (and `.png` with the calls group) and prints the tables. Every
loop is bounded by time and by a count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import targets
from bench.calls import Bench, verify
from bench.capacity import WITHOUT_HOLDS, Capacity, Trial, history_events_per_second, model
from bench.ledger_cases import LedgerCases, ratios
from bench.measure import Phase
from bench.no_holds import NO_HOLDS_TASK_QUEUE
from bench.osmapi import ApiCases
from bench.plot import plot
from bench.profile import Profiler
from bench.stack import REPO_ROOT, Stack
from bench.summary import machine_info, print_calls, print_ops, print_verification, summarize
from orchestrator_client import BillingClient

GROUPS = ("calls", "ledger", "api", "capacity")
QUICK = {
    "duration": 4.0,
    "rounds": 1,
    "latency_duration": 8.0,
    "ops_duration": 3.0,
    "capacity_duration": 8.0,
    "capacity_start": 5,
    "capacity_max": 10,
    "capacity_bisect": False,
}


async def run_calls(bench: Bench, args: argparse.Namespace) -> list[Phase]:
    print("warming up …", file=sys.stderr)
    await bench.warmup()
    phases: list[Phase] = []
    # Rounds interleave the cases (baseline, billed, hot, baseline, ...) so a slow spell on the
    # machine hits all of them alike and the ratios stay fair.
    per_round = args.duration / args.rounds
    for batched in (False, True):
        cases: dict[str, Phase] = {}
        for _ in range(args.rounds):
            for kind in ("baseline", "notify", "ledger", "billed", "hot"):
                cases[kind] = await bench.closed_loop(kind, batched, per_round, cases.get(kind))
        phases.extend(cases.values())
    peak = max(p.calls_per_s() for p in phases if p.kind == "billed" and p.batched)
    rate = args.latency_rate or max(0.5, peak * args.latency_load)
    phases.append(await bench.open_loop(rate, args.latency_duration, batched=True, kind="baseline"))
    phases.append(await bench.open_loop(rate, args.latency_duration, batched=True))
    return phases


async def run_capacity(bench: Bench, stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    assert bench.billed is not None and bench.baseline is not None
    without_holds = BillingClient(bench.billed.client, task_queue=NO_HOLDS_TASK_QUEUE)
    capacity = Capacity(
        bench.billed,
        bench.baseline,
        stack.database_url,
        bench.cpu,
        args.seed,
        without_holds,
        bench.ledger_floor,
    )
    await capacity.seed_accounts(args.capacity_max)
    out: dict[str, Any] = {"duration_s": args.capacity_duration}

    async def history(trials: list[Trial]) -> float | None:
        assert bench.billed is not None
        sample = next((t.sample_call for t in reversed(trials) if t.sample_call), None)
        if sample is None:
            return None
        return await history_events_per_second(bench.billed, sample, args.capacity_duration)

    billed_trials: list[Trial] = []
    for kind in ("baseline", "billed"):
        held, trials = await capacity.search(
            kind, args.capacity_start, args.capacity_max, args.capacity_duration,
            args.capacity_bisect,
        )  # fmt: skip
        out[kind] = {"max_calls": held, "trials": [t.public() for t in trials]}
        if (events := await history(trials)) is not None:
            out[kind]["history_events_per_call_second"] = events
        if kind == "billed":
            billed_trials = trials
    # Running holds' cost: the same workflow without them, at the billed levels, right after.
    holds, trials = await capacity.compare_without_holds(billed_trials, args.capacity_duration)
    if (events := await history([t for t in trials if t.kind == WITHOUT_HOLDS])) is not None:
        holds["without_holds_history_events_per_call_second"] = events
    out["running_holds"] = holds
    # The ledger floor at the level the live-call target asks for.
    out["ledger_floor"] = await capacity.floor_at_target(
        out["baseline"]["max_calls"], billed_trials, args.capacity_duration
    )
    bench.plans.extend(capacity.plans)
    out["model"] = model(out["billed"], os.cpu_count() or 1)
    return out


async def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    loadavg_at_start = [round(x, 2) for x in os.getloadavg()]
    groups = set(args.only)
    bench = Bench(stack, args)
    await bench.setup()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(sys.argv[1:]),
        "machine": {**machine_info(), "loadavg_at_start": loadavg_at_start},
        "settings": {**{k: v for k, v in vars(args).items() if k != "output"}},
    }
    phases: list[Phase] = []
    api_expected = 0
    if "calls" in groups:
        phases = await run_calls(bench, args)
        results["summary"] = summarize(phases)
        results["phases"] = [p.public() for p in phases]
    if "ledger" in groups:
        cases = LedgerCases(stack.database_url, bench.cpu, args.ledger_concurrency, args.seed)
        ledger_phases = await cases.run(args.ops_duration)
        results["ledger"] = {
            "phases": [p.public() for p in ledger_phases],
            "ledger_over_raw": ratios(ledger_phases),
        }
        api_expected += cases.expected_paisa
    if "api" in groups:
        api = ApiCases(stack, bench.cpu, args.api_concurrency, args.seed)
        await api.setup()
        profile: dict[str, Any] | None = None
        if args.profile and stack.api is not None and stack.api.pid:
            with Profiler(stack.api.pid, args.ops_duration) as profiler:
                await api.profile_load(args.ops_duration)
            profile = profiler.top(20)
        api_phases, rate = await api.run(
            args.ops_duration, args.batch_concurrency, args.latency_duration
        )
        results["api"] = {
            "phases": [p.public() for p in api_phases],
            "authorize_half_peak_rate_per_s": round(rate, 1),
            "temporal": await api.temporal_touches(stack.temporal.address),
            "api_workers": args.api_workers,
        }
        if profile is not None:
            results["api"]["profile"] = profile
        api_expected += api.expected_paisa
    if "capacity" in groups:
        results["capacity"] = await run_capacity(bench, stack, args)
    await asyncio.sleep(1.0)
    results["verification"] = verify(stack.database_url, bench.plans, api_expected)
    results.setdefault("summary", {})["targets"] = targets.evaluate(results)
    results["_phases"] = phases
    return results


def print_running_holds(holds: dict[str, Any]) -> None:
    if "error" in holds:
        print(f"running holds' cost: not measured ({holds['error']})")
        return
    print(
        f"running holds' cost (levels {holds['levels']}): billed N = {holds['billed_max_calls']} "
        f"with holds, {holds['without_holds_max_calls']} without"
        + (
            f" (failed at {holds['without_holds_failed_at']})"
            if holds.get("without_holds_failed_at")
            else ""
        )
        + f" (ratio {holds['billed_over_without_holds']})"
    )
    for kind, cpu in holds["cpu_ms_per_call_second"].items():
        print(f"  CPU ms per call-second at N = {holds['cpu_level']}, {kind}: {cpu}")
    if "worker_and_postgres_cpu_with_over_without" in holds:
        ratio = holds["worker_and_postgres_cpu_with_over_without"]
        print(f"  worker + PostgreSQL CPU, with ÷ without holds: {ratio}")


def print_ledger_floor(floor: dict[str, Any]) -> None:
    if "error" in floor:
        print(f"ledger floor: {floor['error']}")
        return
    verdict = "holds" if floor["holds_target"] else "does not hold"
    print(
        f"ledger floor (the baseline + the ledger's writes, nothing else): {verdict} the target "
        f"level {floor['target_level']}; largest level tried that held: "
        f"{floor['max_calls_tried_that_held']}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke run: every group, seconds each")
    add("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    add("--duration", type=float, default=20.0, help="seconds per call throughput case")
    add("--concurrency", type=int, default=20, help="closed-loop concurrency (calls)")
    add("--rounds", type=int, default=2, help="interleaved rounds per throughput case")
    add("--latency-duration", type=float, default=40.0,
        help="seconds of each open-loop latency phase: the calls' and /authorize's")  # fmt: skip
    add("--latency-load", type=float, default=0.5, help="latency rate as a fraction of peak")
    add("--latency-rate", type=float, default=None, help="fixed calls/s instead")
    add("--latency-accounts", type=int, default=60)
    add("--poll-interval", type=float, default=0.02, help="balance poll, seconds")
    add(
        "--balance-probe",
        choices=("db", "http"),
        default="db",
        help="latency phase: one poller of the accounts table, or HTTP polls per call",
    )
    add("--ops-duration", type=float, default=10.0, help="seconds per ledger and API case")
    add("--ledger-concurrency", type=int, default=4, help="connections of the ledger cases")
    add("--api-concurrency", type=int, default=16, help="HTTP connections of the API cases")
    add("--batch-concurrency", type=int, default=2, help="batch calls in flight")
    add("--api-workers", type=int, default=int(os.environ.get("API_WORKERS") or 2))
    add("--profile", action="store_true", help="py-spy top-20 of the API under api-usage load")
    add("--capacity-duration", type=float, default=60.0, help="seconds each live call lasts")
    add("--capacity-start", type=int, default=25, help="first N of the capacity search")
    add("--capacity-max", type=int, default=400, help="largest N tried")
    add("--capacity-bisect", action=argparse.BooleanOptionalAction, default=True)
    add("--temporal-db", choices=("file", "memory"), default="file",
        help="dev server on a SQLite file (persistent, as `make serve`) or in memory")  # fmt: skip
    add("--database-url", default=None, help="a PostgreSQL server to use")
    add("--workers", type=int, default=1, help="billing worker processes")
    add("--output", default=str(REPO_ROOT / "docs" / "benchmarks"))
    add("--name", default="results", help="file stem for the JSON and PNG")
    add("--seed", type=int, default=int(time.time()) % 100000)
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    if not set(args.only) <= set(GROUPS):
        parser.error(f"--only takes {', '.join(GROUPS)}")
    if args.duration <= 0 or args.duration > 600 or not 1 <= args.concurrency <= 200:
        parser.error("--duration must be in (0, 600] and --concurrency in [1, 200]")
    if not 1 <= args.workers <= 8 or not 1 <= args.api_workers <= 8:
        parser.error("--workers and --api-workers must be in [1, 8]")
    if not 1 <= args.rounds <= 10 or not 0 < args.latency_duration <= 600:
        parser.error("--rounds must be in [1, 10] and --latency-duration in (0, 600]")
    if not 0 < args.ops_duration <= 600 or not 0 < args.capacity_duration <= 600:
        parser.error("--ops-duration and --capacity-duration must be in (0, 600]")
    if not 1 <= args.capacity_start <= args.capacity_max <= 2000:
        parser.error("need 1 <= --capacity-start <= --capacity-max <= 2000")
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
            with_no_holds="capacity" in args.only,
            database_url=args.database_url,
            workers=args.workers,
            api_workers=args.api_workers,
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
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    if phases:
        plot(phases, out / f"{args.name}.png")
        print_calls(phases, results["summary"])
    for group, title in (("ledger", "ledger vs raw psycopg"), ("api", "osmAPI over HTTP")):
        if group in results:
            print_ops(title, results[group]["phases"])
    if "capacity" in results:
        c = results["capacity"]
        print(f"\nlive-call capacity: billed N = {c['billed']['max_calls']}, "
              f"baseline N = {c['baseline']['max_calls']}")  # fmt: skip
        print_running_holds(c["running_holds"])
        print_ledger_floor(c["ledger_floor"])
    print_verification(results["verification"])
    print("\ntargets (issue 16):")
    print(targets.table(results["summary"]["targets"]))
    print(f"\nwrote {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
