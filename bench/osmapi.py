"""The osmAPI over HTTP, as an LLM gateway drives it: `POST /v1/api-usage` closed loop spread
over accounts and on one hot account, `POST /v1/api-usage/authorize` at its peak and then open
loop at half of it, and the batch form (1,000 requests a call). Afterwards: did any of it touch
Temporal? (Only a drop below the alert threshold may: one account is taken across on purpose.)"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.http import Connection
from bench.ledger_cases import SKU, TOKENS, api_price
from bench.load import seed_accounts
from bench.measure import CpuMeter, OpPhase, closed_loop, open_loop
from bench.stack import Stack

TOP_UP = 500_000_000
BATCH = 1000


class ApiCases:
    def __init__(self, stack: Stack, cpu: CpuMeter, concurrency: int, seed: int) -> None:
        self.stack = stack
        self.cpu = cpu
        self.concurrency = concurrency
        self.seed = seed
        self.ids = itertools.count()
        self.key = ""
        self.spread: list[str] = []
        self.crossing = ""
        self.expected_paisa = 0
        self.price = api_price().total_paisa
        url = urlsplit(stack.api_url)
        self.host, self.port = url.hostname or "127.0.0.1", int(url.port or 80)

    def _id(self) -> str:
        return f"api-{self.seed}-{next(self.ids):09d}"

    def _request(self, account: str) -> dict[str, Any]:
        return {
            "request_id": self._id(),
            "account_id": account,
            "sku": SKU,
            "input_tokens": TOKENS[0],
            "output_tokens": TOKENS[1],
        }

    async def setup(self) -> None:
        from db.session import get_sessionmaker

        factory = get_sessionmaker(self.stack.database_url)
        self.spread = await asyncio.to_thread(
            seed_accounts, factory, 16, top_up_paisa=TOP_UP, prefix=f"api-{self.seed}"
        )
        headers = {"Authorization": f"Bearer {self.stack.admin_api_key}"}
        async with httpx.AsyncClient(base_url=self.stack.api_url, headers=headers) as http:
            created = await http.post("/v1/api-keys", json={"role": "orchestrator"})
            created.raise_for_status()
            self.key = created.json()["key"]
            account = await http.post(
                "/v1/accounts", json={"name": "crossing", "email": "crossing@bench.invalid"}
            )
            account.raise_for_status()
            self.crossing = account.json()["account"]["id"]  # ₹50 welcome promo

    def _connections(self, count: int) -> list[Connection]:
        return [Connection(self.host, self.port, self.key) for _ in range(count)]

    async def _charge_phase(self, label: str, accounts: list[str], duration: float) -> OpPhase:
        conns = self._connections(self.concurrency)
        phase = OpPhase(f"api-usage, {label}", "api", self.concurrency)

        async def op(worker: int, seq: int) -> None:
            body = self._request(accounts[(worker * 7 + seq) % len(accounts)])
            status, answer = await conns[worker].request("POST", "/v1/api-usage", body)
            if status != 200:
                raise RuntimeError(f"HTTP {status} {answer.get('code') if answer else ''}")
            self.expected_paisa += answer["total_paisa"]

        try:
            return await closed_loop(phase, duration, op, self.cpu)
        finally:
            for conn in conns:
                await conn.close()

    async def _authorize_op(self, conns: list[Connection]) -> Any:
        """One authorize on the next idle connection of `conns` (oldest first), waiting for one
        when all are busy, as a gateway's bounded keep-alive pool does; the wait is part of the
        op's latency. The open loop once opened a new connection instead: a hiccup of a few
        tens of milliseconds at 1,600 requests a second then opened a hundred or more, whose
        accepts and first requests stretched it to 100–170 ms (docs/benchmarks.md)."""
        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for conn in conns:
            idle.put_nowait(conn)

        async def op(worker: int, seq: int) -> None:
            conn = await idle.get()
            try:
                body = {"account_id": self.spread[seq % len(self.spread)]}
                status, _ = await conn.request("POST", "/v1/api-usage/authorize", body)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")
            finally:
                idle.put_nowait(conn)

        return op

    async def _batch_phase(self, duration: float, concurrency: int) -> OpPhase:
        conns = self._connections(concurrency)
        phase = OpPhase("api-usage/batch ×1000, spread", "api", concurrency, items_per_op=BATCH)

        # Each batch in flight charges its own share of the accounts (a gateway batching per
        # shard of its customers): concurrent batches on the same accounts would only queue on
        # the account locks.
        share = max(1, len(self.spread) // concurrency)

        async def op(worker: int, seq: int) -> None:
            mine = self.spread[worker * share : (worker + 1) * share] or self.spread
            body = {"requests": [self._request(mine[i % len(mine)]) for i in range(BATCH)]}
            status, answer = await conns[worker].request("POST", "/v1/api-usage/batch", body)
            if status != 200 or answer["charged"] != BATCH:
                raise RuntimeError(f"HTTP {status}, charged {answer and answer.get('charged')}")
            self.expected_paisa += sum(r["total_paisa"] for r in answer["results"])

        try:
            return await closed_loop(phase, duration, op, self.cpu)
        finally:
            for conn in conns:
                await conn.close()

    async def profile_load(self, duration: float) -> None:
        """The spread charge load once more, for the profiler (not one of the measured phases:
        py-spy's sampling costs the API a little)."""
        await self._charge_phase("api-usage, spread (profiled)", self.spread, duration)

    async def run(
        self, duration: float, batch_concurrency: int, latency_duration: float
    ) -> tuple[list[OpPhase], float]:
        """The phases, and the authorize rate of the open-loop phase (half of its peak). That
        phase is a latency phase and lasts `latency_duration`, as the calls' do: its p99 over
        10 s was a draw on whether the reconciler's minutely run (a burst of about 150 ms in the
        worker and Temporal) or another burst of the stack's fell in it (docs/benchmarks.md)."""
        phases = [
            await self._charge_phase("spread", self.spread, duration),
            await self._charge_phase("hot", self.spread[:1], duration),
        ]
        conns = self._connections(self.concurrency)
        peak = OpPhase("api-usage/authorize, peak", "api", self.concurrency)
        phases.append(await closed_loop(peak, duration, await self._authorize_op(conns), self.cpu))
        rate = max(1.0, peak.per_s() / 2)
        half = OpPhase(f"api-usage/authorize @{rate:.0f}/s (open loop)", "api", None)
        phases.append(
            await open_loop(half, rate, latency_duration, await self._authorize_op(conns), self.cpu)
        )
        for conn in conns:
            await conn.close()
        phases.append(await self._batch_phase(duration, batch_concurrency))
        return phases, rate

    async def temporal_touches(self, temporal_address: str) -> dict[str, Any]:
        """Which accounts' workflows Temporal knows of: none of the load's accounts (they never
        went below their threshold), and the crossing account after one charge takes it below."""
        from temporalio.client import Client
        from temporalio.service import RPCError

        from domain.contracts import account_workflow_id

        client = await Client.connect(temporal_address)

        async def signals(account: str) -> int:
            try:
                history = await client.get_workflow_handle(
                    account_workflow_id(account)
                ).fetch_history()
            except RPCError:
                return 0  # no such workflow: never told anything
            return sum(
                1
                for e in history.events
                if e.HasField("workflow_execution_signaled_event_attributes")
            )

        before = await signals(self.crossing)
        conn = Connection(self.host, self.port, self.key)
        big = {**self._request(self.crossing), "sku": "openai/gpt-4o", "input_tokens": 200_000}
        status, answer = await conn.request("POST", "/v1/api-usage", big)
        await conn.close()
        assert status == 200, answer
        self.expected_paisa += answer["total_paisa"]
        load = [await signals(account) for account in self.spread]
        return {
            "load_accounts": len(self.spread),
            "load_account_signals": sum(load),
            "crossing_account_signals_added": await signals(self.crossing) - before,
            "met": sum(load) == 0 and await signals(self.crossing) - before == 1,
        }
