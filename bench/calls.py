"""The call scenarios of the benchmark (through the orchestrator client, as production drives
them): closed-loop throughput per case, the open-loop latency phase, and the ledger check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from typing import Any

import httpx

from bench.baseline import BASELINE_TASK_QUEUE, LEDGER_TASK_QUEUE, NOTIFY_TASK_QUEUE
from bench.load import (
    BalancePoller,
    BalanceShown,
    CallPlan,
    CallSample,
    drive_call,
    make_plan,
    seed_accounts,
)
from bench.measure import CpuMeter, Phase, Progress, quiesce_collector
from bench.stack import Stack
from orchestrator_client import BillingClient

KIND_LABELS = {
    "baseline": "baseline",
    "notify": "baseline+notify",
    "ledger": "baseline+ledger",
    "billed": "billed",
    "hot": "hot",
}
TOP_UP_PAISA = 50_000_000  # ₹5 lakh per account: no call is ever refused during the run
MAX_CALLS_PER_PHASE = 20_000


class Bench:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.rng = random.Random(args.seed)
        self.plans: list[CallPlan] = []  # every billed call, for the expected-total check
        self.billed: BillingClient | None = None
        self.baseline: BillingClient | None = None
        self.notify: BillingClient | None = None
        self.ledger_floor: BillingClient | None = None
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
        self.ledger_floor = BillingClient(self.baseline.client, task_queue=LEDGER_TASK_QUEUE)

    def _plan(self, kind: str, account_id: str) -> CallPlan:
        plan = make_plan(self._call_id(kind), account_id, self.rng)
        if kind in ("billed", "hot", "lat"):
            self.plans.append(plan)
        return plan

    async def closed_loop(
        self, kind: str, batched: bool, duration: float, phase: Phase | None = None
    ) -> Phase:
        """One round of a closed-loop case; pass `phase` to add a round to it."""
        client = {
            "baseline": self.baseline,
            "notify": self.notify,
            "ledger": self.ledger_floor,
        }.get(kind, self.billed)
        assert client is not None
        quiesce_collector()
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
        after hangup is exact, and (billed) waits until the balance shows it: by default one
        `BalancePoller` reads every waiting account's row each poll interval; with
        `--balance-probe http` each call polls `GET /v1/accounts/{id}/balance` itself (the
        committed runs before results-2026-12-01d), which loads the API in this phase only.
        The baseline variant gives the platform's floor at the same rate (it has no balance)."""
        client = self.billed if kind == "billed" else self.baseline
        assert client is not None
        quiesce_collector()
        billed = kind == "billed"
        name = f"{'latency' if billed else 'baseline latency'} @{rate:.1f}/s"
        kind_name = "latency" if billed else "baseline-latency"
        phase = Phase(name, kind_name, batched, None, round(rate, 2))
        progress = Progress(name, duration)
        idle: asyncio.Queue[str] = asyncio.Queue()
        expected: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {self.stack.admin_api_key}"}
        skipped = 0
        poller = BalancePoller(self.stack.database_url, self.args.poll_interval)
        stop_polling = asyncio.Event()
        async with httpx.AsyncClient(base_url=self.stack.api_url, headers=headers) as http:
            for account in self.latency_accounts:
                body = (await http.get(f"/v1/accounts/{account}/balance")).json()
                expected[account] = int(body["available_paisa"])
                idle.put_nowait(account)

            def http_probe(account: str, want: int) -> BalanceShown:
                async def shown() -> None:
                    while True:
                        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                            response = await http.get(f"/v1/accounts/{account}/balance", timeout=5)
                            body = response.json()
                            if (
                                response.status_code == 200
                                and body["available_paisa"] == want
                                and body["reserved_paisa"] == 0
                            ):
                                return
                        await asyncio.sleep(self.args.poll_interval)

                return shown

            def shown_probe(account: str, want: int) -> BalanceShown:
                if self.args.balance_probe == "http":
                    return http_probe(account, want)
                return lambda: poller.wait(account, want)

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
                        balance_shown=shown_probe(account, want) if billed else None,
                    )
                    if sample.ok:
                        expected[account] = want
                    phase.samples.append(sample)
                    progress.tick(sample.ok)
                finally:
                    if sample is not None and sample.ok:
                        idle.put_nowait(account)  # a failed call leaves its account unknown

            polling = asyncio.create_task(poller.run(stop_polling))
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
            stop_polling.set()
            await polling
        progress.render(final=True)
        if skipped:
            print(f"  ({skipped} arrivals skipped: no idle account)", file=sys.stderr)
        return phase

    async def warmup(self) -> None:
        assert self.billed and self.baseline and self.notify and self.ledger_floor
        for client, kind in (
            (self.baseline, "baseline"),
            (self.notify, "notify"),
            (self.ledger_floor, "ledger"),
            (self.billed, "billed"),
        ):
            plans = [self._plan(kind, self.accounts[i]) for i in range(self.args.concurrency)]
            await asyncio.gather(*(drive_call(client, p, batched=True, timeout=60) for p in plans))


def verify(database_url: str, plans: list[CallPlan], api_expected_paisa: int) -> dict[str, Any]:
    """Invariant checker plus: every generated call charged exactly what was generated, and the
    osmAPI charges total what the load generator was told it charged."""
    from sqlalchemy import text

    from db.session import get_sessionmaker
    from ledger.invariants import check_ledger

    with get_sessionmaker(database_url)() as session:
        violations = check_ledger(session)
        charged: dict[str, int] = dict(
            session.execute(
                text(
                    "SELECT reference, -amount_paisa FROM ledger_transactions "
                    "WHERE kind = 'call_charge'"
                )
            ).all()
        )
        api_charged = session.execute(
            text(
                "SELECT COALESCE(-SUM(amount_paisa), 0) FROM ledger_transactions "
                "WHERE kind = 'api_charge'"
            )
        ).scalar_one()
        finalized = session.execute(
            text("SELECT count(*) FROM calls WHERE status = 'finalized'")
        ).scalar_one()
        active_holds = session.execute(
            text("SELECT count(*) FROM holds WHERE status = 'active'")
        ).scalar_one()
    mismatched = [p.call_id for p in plans if charged.get(p.call_id, 0) != p.expected_total_paisa]
    return {
        "invariant_violations": [str(v) for v in violations[:20]],
        "invariant_violation_count": len(violations),
        "billed_calls_generated": len(plans),
        "calls_finalized": int(finalized),
        "active_holds": int(active_holds),
        "expected_charged_paisa": sum(p.expected_total_paisa for p in plans),
        "ledger_charged_paisa": sum(charged.get(p.call_id, 0) for p in plans),
        "calls_with_wrong_charge": len(mismatched),
        "api_expected_charged_paisa": api_expected_paisa,
        "api_ledger_charged_paisa": int(api_charged),
    }
