"""Where the billing worker's CPU goes: `python -m bench.worker_cpu`.

Runs the real workflows and activities (worker.registry) in this process against a private
PostgreSQL and an in-memory Temporal dev server, and measures this process's CPU time per billed
call (worker + ledger + the client driving it) for several variants, each on its own task queue:

- `sandboxed`: the worker as `python -m worker` builds it (default sandboxed workflow runner);
- `unsandboxed`: the same with `UnsandboxedWorkflowRunner` (PLATFORM.md: trade only with a
  replay test in CI);
- `ledger-only`: no Temporal at all, just `ledger.calls.authorize_call` + `finalize_call`,
  each in its own transaction, as the two activities run them;
- `baseline`: the same client load against the no-billing baseline workflow (sandboxed, no-op
  local activities), run by a worker in this process too: `sandboxed` − `baseline` is what the
  billing adds per call.

Writes `docs/benchmarks/worker_cpu.json`. Bounded: `--calls` per variant (default 150).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import DEFAULT_CARD, drive_call, make_plan, seed_accounts
from bench.stack import REPO_ROOT
from dev.postgres import PostgresProcess
from dev.temporal import TemporalDevServer


async def _measure(label: str, calls: int, concurrency: int, run_one: Any) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> bool:
        async with sem:
            return bool(await run_one(i))

    await asyncio.gather(*(one(-1 - i) for i in range(concurrency * 2)))  # warm-up
    wall0, cpu0 = time.monotonic(), time.process_time()
    results = await asyncio.gather(*(one(i) for i in range(calls)))
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    row = {
        "variant": label,
        "calls": calls,
        "ok": sum(results),
        "calls_per_s": round(calls / wall, 1),
        "cpu_ms_per_call": round(1000 * cpu / calls, 1),
    }
    print(row, file=sys.stderr, flush=True)
    return row


async def run(args: argparse.Namespace, work_dir: str) -> list[dict[str, Any]]:
    from temporalio.client import Client
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from bench.baseline import BaselineCallWorkflow, noop_authorize, noop_finalize
    from db.migrate import upgrade
    from db.session import get_sessionmaker, run_in_transaction
    from dev.postgres import create_scratch_database
    from domain.ledger_types import FinalizeCallRequest
    from domain.rating import UsageTotals, validate_usage_event
    from ledger import calls as ledger_calls
    from ledger.policy import LedgerPolicy
    from orchestrator_client import BillingClient
    from worker.main import worker_deps
    from worker.registry import WORKFLOWS, build_activities

    pg = PostgresProcess(Path(work_dir) / "pg")
    await asyncio.to_thread(pg.start)
    temporal = TemporalDevServer(Path(work_dir) / "temporal.log")
    await asyncio.to_thread(temporal.start)
    try:
        url = create_scratch_database(pg.url, prefix="cpu")
        upgrade(url)
        factory = get_sessionmaker(url)
        accounts = seed_accounts(factory, 4, top_up_paisa=100_000_000, prefix="cpu")
        client = await Client.connect(temporal.address)
        policy = LedgerPolicy()
        rows: list[dict[str, Any]] = []
        rng = random.Random(7)

        for variant in ("sandboxed", "unsandboxed"):
            queue = f"cpu-{variant}"
            deps = worker_deps(client, factory, policy, task_queue=queue)
            kwargs: dict[str, Any] = {}
            if variant == "unsandboxed":
                kwargs["workflow_runner"] = UnsandboxedWorkflowRunner()
            worker = Worker(
                client,
                task_queue=queue,
                workflows=WORKFLOWS,
                activities=build_activities(deps),
                **kwargs,
            )
            billing = BillingClient(client, task_queue=queue)

            async def billed(i: int, variant: str = variant, billing: Any = billing) -> bool:
                plan = make_plan(f"cpu-{variant}-{i}", accounts[i % 4], rng)
                return (await drive_call(billing, plan, batched=True, timeout=60)).ok

            async with worker:
                rows.append(await _measure(variant, args.calls, args.concurrency, billed))

        async def ledger_only(i: int) -> bool:
            plan = make_plan(f"cpu-ledger-{i}", accounts[i % 4], rng)
            totals = UsageTotals()
            for event in plan.events:
                totals.add(validate_usage_event(event, plan.channel, DEFAULT_CARD))

            def authorize() -> Any:
                return run_in_transaction(
                    factory,
                    lambda s: ledger_calls.authorize_call(
                        s,
                        policy,
                        call_id=plan.call_id,
                        account_id=plan.account_id,
                        channel=plan.channel,
                        ends_transaction=True,
                    ),
                )

            def finalize() -> Any:
                request = FinalizeCallRequest(
                    call_id=plan.call_id, outcome=plan.outcome, usage=totals.lines
                )
                return run_in_transaction(
                    factory,
                    lambda s: ledger_calls.finalize_call(s, request, ends_transaction=True),
                )

            await asyncio.to_thread(authorize)
            await asyncio.to_thread(finalize)
            return True

        rows.append(await _measure("ledger-only", args.calls, args.concurrency, ledger_only))

        baseline_worker = Worker(
            client,
            task_queue="cpu-baseline",
            workflows=[BaselineCallWorkflow],
            activities=[noop_authorize, noop_finalize],
        )
        baseline = BillingClient(client, task_queue="cpu-baseline")

        async def base(i: int) -> bool:
            plan = make_plan(f"cpu-baseline-{i}", accounts[i % 4], rng)
            return (await drive_call(baseline, plan, batched=True, timeout=60)).ok

        async with baseline_worker:
            rows.append(await _measure("baseline", args.calls, args.concurrency, base))
        return rows
    finally:
        temporal.stop()
        pg.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_cpu", description=__doc__)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--output", default=str(REPO_ROOT / "docs" / "benchmarks"))
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= 5000 or not 1 <= args.concurrency <= 100:
        parser.error("--calls must be in [1, 5000] and --concurrency in [1, 100]")
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="billing-cpu-") as work_dir:
        rows = asyncio.run(run(args, work_dir))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "worker_cpu.json").write_text(
        json.dumps(
            {
                "command": "python -m bench.worker_cpu " + " ".join(argv or sys.argv[1:]),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print("| variant | calls/s | CPU ms per call (this process) |")
    print("| --- | ---: | ---: |")
    for row in rows:
        print(f"| {row['variant']} | {row['calls_per_s']} | {row['cpu_ms_per_call']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
