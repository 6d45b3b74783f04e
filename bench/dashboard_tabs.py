"""Open dashboard tabs × CPU: what the Calls/Billing pages' live stream costs as tabs pile up.

`python -m bench.dashboard_tabs` starts PostgreSQL (the pgserver wheel, or `--database-url`)
and the API (`uvicorn api.main:app` from `--source`, default this tree; no Temporal is needed:
the stream reads the ledger), signs customers in, then for each tab count opens that many
`/dashboard/events` streams spread over `--accounts` accounts and measures, over `--seconds`:

- CPU seconds per second of the API process and of PostgreSQL (all its processes);
- PostgreSQL transactions per second (`pg_stat_database.xact_commit`: what the tabs make the
  database do, independent of the machine);
- with `--rate` changes a second (a top-up of 1 paisa on a random account, committed by this
  process straight through the ledger), the events the tabs received and the delay from the
  commit to a tab's `balance` event.

Run it once per design and compare: `--source DIR --label poll` on a checkout of the earlier
per-tab polling stream (`git archive <rev> | tar -x -C DIR`). Results: `--output` (JSON) and a
table on stdout; docs/benchmarks.md shows the committed run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import text

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Point:
    label: str
    tabs: int
    rate: float  # changes a second asked for
    changes_per_second: float  # achieved (each change is one committed transaction)
    seconds: float
    api_cpu: float  # CPU seconds per second
    postgres_cpu: float
    xacts_per_second: float
    events: int
    delivered: int  # balance events caused by the measured changes
    expected: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass
class Tab:
    account_id: str
    events: int = 0
    balances: list[float] = field(default_factory=list)  # receipt times (monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def process_tree_cpu(pid: int) -> float:
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
    return total


async def run_tab(client: httpx.AsyncClient, tab: Tab) -> None:
    async with client.stream("GET", "/dashboard/events", timeout=None) as response:
        response.raise_for_status()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                tab.events += 1
                if event == "balance":
                    tab.balances.append(time.monotonic())
                    tab.ready.set()


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.postgres: Any = None
        self.api: Any = None
        self.database_url = ""
        self.admin_key = "adm_bench_" + os.urandom(8).hex()
        self.port = 0
        self.cookies: dict[str, dict[str, str]] = {}  # account -> session cookie

    def start(self) -> None:
        from dev.postgres import PostgresProcess, create_scratch_database
        from dev.procs import ChildProcess, free_port, python_command, wait_for_http

        server_url = self.args.database_url
        if not server_url:
            self.postgres = PostgresProcess(self.work / "pgdata")
            self.postgres.start()
            server_url = self.postgres.url
        self.database_url = create_scratch_database(server_url, prefix="bench_tabs")
        self.port = free_port()
        source = Path(self.args.source).absolute()
        self.api = ChildProcess(
            "api",
            python_command(
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ),
            env={
                "DATABASE_URL": self.database_url,
                "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # none: the stream needs none
                "ADMIN_API_KEY": self.admin_key,
                "SESSION_SECRET": os.urandom(16).hex(),
                "PYTHONPATH": str(source),
                "LOG_LEVEL": "WARNING",
            },
            log_path=self.work / "api.log",
            cwd=source,
            stop_timeout=15,
        )
        self.api.start()
        wait_for_http(f"http://127.0.0.1:{self.port}/login", timeout=120)

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
        if self.postgres is not None:
            self.postgres.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def postgres_pid(self) -> int | None:
        if self.postgres is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid_file = self.postgres.data_dir / "postmaster.pid"
            return int(pid_file.read_text().splitlines()[0])
        return None

    async def make_accounts(self, count: int) -> list[str]:
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        accounts: list[str] = []
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            for n in range(count):
                created = await http.post(
                    "/v1/accounts",
                    json={"name": f"Bench tabs {n}", "email": f"tabs{n}@bench.example"},
                    headers=admin,
                )
                created.raise_for_status()
                body = created.json()
                login = await http.post(
                    "/login", data={"api_key": body["api_key"]["key"]}, follow_redirects=False
                )
                assert login.status_code == 303, login.text
                account_id = body["account"]["id"]
                self.cookies[account_id] = dict(login.cookies)
                accounts.append(account_id)
        return accounts

    def sample(self) -> tuple[float, float, float, int]:
        from db.session import get_engine

        api = process_tree_cpu(self.api.pid) if self.api.pid else 0.0
        pg_pid = self.postgres_pid()
        pg = process_tree_cpu(pg_pid) if pg_pid else 0.0
        with get_engine(self.database_url).connect() as connection:
            xacts = connection.execute(
                text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
        return time.monotonic(), api, pg, int(xacts)

    def change(self, account_id: str) -> None:
        from db.session import get_sessionmaker, run_in_transaction
        from ledger import accounts

        run_in_transaction(
            get_sessionmaker(self.database_url),
            lambda s: accounts.top_up(
                s, account_id=account_id, amount_paisa=1, payment_reference=os.urandom(12).hex()
            ),
        )

    async def measure(self, accounts: list[str], tabs: int, rate: float) -> Point:
        limits = httpx.Limits(max_connections=tabs + 10, max_keepalive_connections=tabs + 10)
        clients = {
            a: httpx.AsyncClient(base_url=self.base_url, cookies=self.cookies[a], limits=limits)
            for a in accounts
        }
        opened = [Tab(accounts[n % len(accounts)]) for n in range(tabs)]
        tasks = [asyncio.create_task(run_tab(clients[t.account_id], t)) for t in opened]
        try:
            await asyncio.wait_for(asyncio.gather(*(t.ready.wait() for t in opened)), 120)
            await asyncio.sleep(self.args.settle)
            events_before = sum(t.events for t in opened)
            changes: list[tuple[str, float]] = []
            start = await asyncio.to_thread(self.sample)
            deadline = start[0] + self.args.seconds
            rng = random.Random(tabs)
            while time.monotonic() < deadline:
                if rate > 0:
                    account_id = rng.choice(accounts[: min(len(accounts), tabs)])
                    await asyncio.to_thread(self.change, account_id)
                    changes.append((account_id, time.monotonic()))
                    await asyncio.sleep(max(0.0, 1.0 / rate))
                else:
                    await asyncio.sleep(0.2)
            end = await asyncio.to_thread(self.sample)
            await asyncio.sleep(1.0)  # let the last changes arrive
            wall = end[0] - start[0]
            latencies, delivered = self._latencies(opened, changes)
            expected = sum(sum(1 for t in opened if t.account_id == a) for a, _ in changes)
            return Point(
                label=self.args.label,
                tabs=tabs,
                rate=rate,
                changes_per_second=round(len(changes) / wall, 2),
                seconds=round(wall, 2),
                api_cpu=round((end[1] - start[1]) / wall, 4),
                postgres_cpu=round((end[2] - start[2]) / wall, 4),
                xacts_per_second=round((end[3] - start[3]) / wall, 1),
                events=sum(t.events for t in opened) - events_before,
                delivered=delivered,
                expected=expected,
                latency_p50_ms=round(statistics.median(latencies), 1) if latencies else None,
                latency_p95_ms=round(_p95(latencies), 1) if latencies else None,
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients.values():
                await client.aclose()

    @staticmethod
    def _latencies(opened: list[Tab], changes: list[tuple[str, float]]) -> tuple[list[float], int]:
        """Per tab and change: the first balance event after the commit (ms)."""
        latencies: list[float] = []
        for tab in opened:
            mine = [at for account, at in changes if account == tab.account_id]
            for n, at in enumerate(mine):
                until = mine[n + 1] if n + 1 < len(mine) else float("inf")
                got = next((t for t in tab.balances if at <= t < until + 5), None)
                if got is not None:
                    latencies.append((got - at) * 1000)
        return latencies, len(latencies)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def table(points: list[Point]) -> str:
    lines = [
        "| design | tabs | changes/s | API CPU | PostgreSQL CPU | DB xacts/s | events | "
        "delivered | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in points:
        p50 = "–" if p.latency_p50_ms is None else f"{p.latency_p50_ms:g}"
        p95 = "–" if p.latency_p95_ms is None else f"{p.latency_p95_ms:g}"
        lines.append(
            f"| {p.label} | {p.tabs} | {p.changes_per_second:g} | {p.api_cpu * 100:.1f} % | "
            f"{p.postgres_cpu * 100:.1f} % | {p.xacts_per_second:g} | {p.events} | "
            f"{p.delivered}/{p.expected} | {p50} | {p95} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> list[Point]:
    with tempfile.TemporaryDirectory(prefix="bench-tabs-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            await asyncio.to_thread(bench.start)
            accounts = await bench.make_accounts(args.accounts)
            points: list[Point] = []
            for tabs in args.tabs:
                for rate in args.rates:
                    point = await bench.measure(accounts, tabs, rate)
                    print(table([point]).splitlines()[-1], flush=True)
                    points.append(point)
            return points
        finally:
            await asyncio.to_thread(bench.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(REPO_ROOT), help="the tree whose API to run")
    parser.add_argument("--label", default="listen", help="this design's name in the results")
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--rates", type=float, nargs="+", default=[0, 5])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--database-url", default=None, help="an existing PostgreSQL server")
    parser.add_argument("--output", default=None, help="JSON results (appended to if it exists)")
    args = parser.parse_args()
    points = asyncio.run(main_async(args))
    print(table(points))
    if args.output:
        path = Path(args.output)
        runs: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
        runs.append(
            {
                "label": args.label,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "options": {k: v for k, v in vars(args).items() if k not in ("output",)},
                "points": [asdict(p) for p in points],
            }
        )
        path.write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
