"""The ledger against its ceiling, no HTTP and no Temporal, measured side by side: the osmAPI
charge (raw psycopg vs ledger.api_requests on the async pool, as the API runs it) spread over
accounts and on one hot account, and a call's authorize + capture (raw psycopg vs ledger.calls
as the worker's activities run it: on the async pool, a Session on a thread for the rare cases)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from bench import raw_ledger
from bench.load import DEFAULT_CARD, seed_accounts
from bench.measure import CpuMeter, OpPhase, closed_loop
from db.async_pool import AsyncPool, open_async_pool, run_in_async_transaction
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import FinalizeCallRequest
from domain.rating import DEFAULT_MARGIN_RATE, Breakdown, UsageTotals, price_usage
from domain.rating import validate_usage_event as validate

SKU = "openai/gpt-4o-mini"
TOKENS = (24_000, 2_000)  # 52 paisa
TOP_UP = 500_000_000


def api_price() -> Breakdown:
    totals = UsageTotals()
    event = {"event_id": "x", "component": "llm", "sku": SKU, "input_tokens": TOKENS[0]}
    totals.add(validate({**event, "output_tokens": TOKENS[1]}, "chat", DEFAULT_CARD))
    return price_usage(totals.lines, DEFAULT_CARD, DEFAULT_MARGIN_RATE)


def call_price() -> tuple[Breakdown, UsageTotals]:
    totals = UsageTotals()
    for raw in TYPICAL_PHONE_CALL_USAGE:
        totals.add(validate(raw, "phone", DEFAULT_CARD))
    return price_usage(totals.lines, DEFAULT_CARD, DEFAULT_MARGIN_RATE), totals


class LedgerCases:
    def __init__(self, database_url: str, cpu: CpuMeter, concurrency: int, seed: int) -> None:
        self.url = database_url
        self.cpu = cpu
        self.concurrency = concurrency
        self.seed = seed
        self.ids = itertools.count()
        self.expected_paisa = 0  # what the osmAPI cases charged, for the run's final check

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.seed}-{next(self.ids):08d}"

    async def run(self, duration: float) -> list[OpPhase]:
        from db.session import get_sessionmaker

        factory = get_sessionmaker(self.url, self.concurrency + 2, 0, False)
        spread = await asyncio.to_thread(
            seed_accounts, factory, 16, top_up_paisa=TOP_UP, prefix=f"ledger-{self.seed}"
        )
        hot = spread[:1]
        pool = await open_async_pool(self.url, self.concurrency)
        raw = pool  # the same pool: only the code differs
        phases: list[OpPhase] = []
        try:
            for label, accounts in (("spread", spread), ("hot", hot)):
                phases.append(await self._api(label, accounts, duration, raw, kind="raw"))
                phases.append(await self._api(label, accounts, duration, pool, kind="ledger"))
            phases.append(await self._calls(spread, duration, raw, factory, kind="raw"))
            phases.append(await self._calls(spread, duration, raw, factory, kind="ledger"))
        finally:
            await pool.close()
        return phases

    async def _api(
        self,
        label: str,
        accounts: list[str],
        duration: float,
        pool: AsyncPool,
        *,
        kind: str,
    ) -> OpPhase:
        from ledger import api_charge_types, api_requests

        price = api_price()
        phase = OpPhase(f"{kind} api charge, {label}", kind, self.concurrency)

        async def op(worker: int, seq: int) -> None:
            account = accounts[(worker * 7 + seq) % len(accounts)]
            request_id = self._id(f"{kind}-api")
            if kind == "raw":
                async with pool.connection() as conn:
                    await raw_ledger.api_charge(conn, account, request_id, SKU, TOKENS, price)
            else:
                item = api_charge_types.ApiUsage(request_id, account, SKU, *TOKENS)
                await run_in_async_transaction(
                    pool, lambda conn: api_requests.charge_api_usage_async(conn, [item])
                )
            self.expected_paisa += price.total_paisa

        return await closed_loop(phase, duration, op, self.cpu)

    async def _calls(
        self,
        accounts: list[str],
        duration: float,
        pool: AsyncPool,
        factory: Any,
        *,
        kind: str,
    ) -> OpPhase:
        from activities.calls import call_ledger_transaction
        from ledger import calls as ledger_calls
        from ledger.policy import LedgerPolicy

        price, totals = call_price()
        policy = LedgerPolicy()
        phase = OpPhase(f"{kind} call authorize + capture", kind, self.concurrency)

        async def op(worker: int, seq: int) -> None:
            account = accounts[(worker * 7 + seq) % len(accounts)]
            call_id = self._id(f"{kind}-call")
            if kind == "raw":
                async with pool.connection() as conn:
                    await raw_ledger.call_authorize(
                        conn, account, call_id, policy.min_balance_paisa
                    )
                    lines = [line.__dict__ for line in totals.lines]
                    await raw_ledger.call_capture(conn, call_id, price, lines)
            else:  # as the worker's call activities run them (activities.calls)
                arguments: dict[str, Any] = {
                    "call_id": call_id,
                    "account_id": account,
                    "channel": "phone",
                }
                await call_ledger_transaction(
                    pool,
                    factory,
                    lambda conn: ledger_calls.authorize_call_async(conn, policy, **arguments),
                    lambda s: ledger_calls.authorize_call(
                        s, policy, **arguments, ends_transaction=True
                    ),
                )
                request = FinalizeCallRequest(call_id, "completed", usage=totals.lines)
                await call_ledger_transaction(
                    pool,
                    factory,
                    lambda conn: ledger_calls.finalize_call_async(conn, request),
                    lambda s: ledger_calls.finalize_call(s, request, ends_transaction=True),
                )

        return await closed_loop(phase, duration, op, self.cpu)


def ratios(phases: list[OpPhase]) -> dict[str, float | None]:
    """ledger ÷ raw for each case measured."""
    by_name = {p.name: p.per_s() for p in phases}
    out: dict[str, float | None] = {}
    for name, rate in by_name.items():
        if name.startswith("ledger "):
            raw = by_name.get("raw " + name[len("ledger ") :])
            out[name[len("ledger ") :]] = round(rate / raw, 3) if raw else None
    return out
