"""The load generator: call plans with exactly known prices, and a driver that plays one call
through the orchestrator client (authorize → 10 usage events → hangup → final result),
retrying through outages on the contract's idempotency (call_id, event_id, first hangup wins).

Shared by `bench.run` and `tests/chaos/`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from domain.channels import CHANNEL_COMPONENTS, Channel, Component, is_charged
from domain.contracts.calls import CallResult
from domain.default_rate_card import DEFAULT_PRICES
from domain.rating import (
    DEFAULT_MARGIN_RATE,
    RateCard,
    UsageTotals,
    price_usage,
    validate_usage_event,
)
from orchestrator_client import BillingClient, BillingClientError

T = TypeVar("T")

EVENTS_PER_CALL = 10
DEFAULT_CARD = RateCard(version=1, prices=DEFAULT_PRICES)

# SKUs the generator meters usage on, per component (all on the default rate card).
_SKUS: dict[Component, list[tuple[str, dict[str, tuple[int, int]]]]] = {
    Component.LLM: [
        ("openai/gpt-4o-mini", {"input_tokens": (500, 6000), "output_tokens": (50, 600)}),
        ("google/gemini-2.0-flash", {"input_tokens": (500, 6000), "output_tokens": (50, 600)}),
    ],
    Component.STT: [("deepgram/nova-3", {"audio_seconds": (1, 20)})],
    Component.TTS: [("elevenlabs/flash-v2", {"characters": (20, 300)})],
    Component.SIP: [("plivo/in-outbound", {"seconds": (1, 20)})],
}
# Mostly answered calls; the rest exercise the void path.
_OUTCOMES = [
    ("completed", 70),
    ("voicemail", 8),
    ("failed", 6),
    ("no_answer", 6),
    ("busy", 5),
    ("rejected", 5),
]
_CHANNELS = [("phone", 55), ("web", 20), ("whatsapp", 15), ("chat", 10)]


@dataclass
class CallPlan:
    call_id: str
    account_id: str
    channel: str
    outcome: str
    events: list[dict[str, Any]]
    expected_total_paisa: int  # what the ledger must charge: 0 for uncharged outcomes


@dataclass
class CallSample:
    """What one driven call measured (seconds, monotonic clock) and how it ended."""

    call_id: str
    ok: bool
    authorized: bool = False
    authorize_s: float | None = None
    hangup_to_result_s: float | None = None
    hangup_to_balance_s: float | None = None
    total_s: float | None = None
    retries: int = 0
    error: str | None = None
    finished_at: float = 0.0
    result: CallResult | None = None


def _weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in table], weights=[w for _, w in table])[0]


def price_events(events: list[dict[str, Any]], channel: str) -> int:
    """The contract's pricing rule on the default card at the default margin (what the ledger
    must charge for these events if the outcome is charged)."""
    totals = UsageTotals()
    for raw in events:
        totals.add(validate_usage_event(raw, channel, DEFAULT_CARD))
    return price_usage(totals.lines, DEFAULT_CARD, DEFAULT_MARGIN_RATE).total_paisa


def make_plan(
    call_id: str,
    account_id: str,
    rng: random.Random,
    *,
    channel: str | None = None,
    outcome: str | None = None,
    events_per_call: int = EVENTS_PER_CALL,
) -> CallPlan:
    channel = channel or _weighted(rng, _CHANNELS)
    outcome = outcome or _weighted(rng, _OUTCOMES)
    components = sorted(CHANNEL_COMPONENTS[Channel(channel)], key=lambda c: c.value)
    events: list[dict[str, Any]] = []
    for index in range(events_per_call):
        component = components[index % len(components)]
        sku, ranges = rng.choice(_SKUS[component])
        event: dict[str, Any] = {
            "event_id": f"{call_id}-e{index}",
            "component": component.value,
            "sku": sku,
        }
        for unit, (low, high) in ranges.items():
            event[unit] = rng.randint(low, high)
        events.append(event)
    expected = price_events(events, channel) if is_charged(outcome) else 0
    return CallPlan(call_id, account_id, channel, outcome, events, expected)


# --- retries ---------------------------------------------------------------------------------


class GaveUp(Exception):
    pass


@dataclass
class RetryBudget:
    """Retry any transient failure (server down, timeouts) until `deadline` (monotonic)."""

    deadline: float
    retries: int = 0
    last_error: str | None = None

    async def run(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        delay = 0.05
        while True:
            try:
                return await asyncio.wait_for(make(), timeout=max(0.1, self._left()))
            except BillingClientError:
                raise  # a business answer (bad request, call ended), not an outage
            except Exception as exc:
                self.retries += 1
                self.last_error = f"{what}: {type(exc).__name__}: {exc}"[:300]
                if self._left() <= delay:
                    raise GaveUp(self.last_error) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _left(self) -> float:
        return self.deadline - time.monotonic()


BalanceShown = Callable[[], Awaitable[object]]


class BalancePoller:
    """One query every `interval` seconds for every account some call is waiting on, straight
    from the accounts table (what `GET /v1/accounts/{id}/balance` reads): the observer costs
    the system under test one cheap statement per interval however many calls wait, where an
    HTTP poll per call would load the API more than the calls do."""

    def __init__(self, database_url: str, interval: float = 0.02) -> None:
        from db.async_pool import libpq_url

        self.url = libpq_url(database_url)
        self.interval = interval
        self.waiting: dict[str, tuple[int, asyncio.Future[float]]] = {}

    def wait(self, account_id: str, available: int) -> asyncio.Future[float]:
        """Resolves to the `time.monotonic()` of the poll that saw the account at `available`
        with nothing reserved (one waiting call per account)."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[account_id] = (available, future)
        return future

    async def run(self, stop: asyncio.Event) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while not stop.is_set():
                for account_id in [a for a, (_, f) in self.waiting.items() if f.cancelled()]:
                    del self.waiting[account_id]  # its caller gave up waiting
                if self.waiting:
                    cursor = await conn.execute(
                        "SELECT id, paid_paisa + promo_paisa, reserved_paisa FROM accounts "
                        "WHERE id = ANY(%s)",
                        (list(self.waiting),),
                    )
                    now = time.monotonic()
                    for account_id, available, reserved in await cursor.fetchall():
                        want, future = self.waiting[account_id]
                        if available == want and reserved == 0:
                            if not future.done():
                                future.set_result(now)
                            del self.waiting[account_id]
                await asyncio.sleep(self.interval)


async def drive_call(
    client: BillingClient,
    plan: CallPlan,
    *,
    batched: bool,
    timeout: float = 120.0,
    balance_shown: BalanceShown | None = None,
    balance_timeout: float = 10.0,
    usage_signals: int | None = None,
    talk_pause: float = 0.0,
) -> CallSample:
    """Play one call. `batched` sends the events in one signal, otherwise one signal each;
    `usage_signals` splits them into that many signals instead, `talk_pause` seconds apart (a
    call that lasts a while). With `balance_shown`, await it after hangup (it returns once the
    charge or void shows) to measure hangup → balance-visible latency."""
    budget = RetryBudget(deadline=time.monotonic() + timeout)
    sample = CallSample(call_id=plan.call_id, ok=False)
    started = time.monotonic()
    try:
        t0 = time.monotonic()
        decision = await budget.run(
            lambda: client.authorize(plan.call_id, plan.account_id, plan.channel), "authorize"
        )
        sample.authorize_s = time.monotonic() - t0
        sample.authorized = decision.authorized
        if not decision.authorized:
            sample.ok = True
            sample.error = f"refused: {decision.reason}"
            return sample
        signals = usage_signals or (1 if batched else len(plan.events))
        size = -(-len(plan.events) // signals)
        for index, start in enumerate(range(0, len(plan.events), size)):
            chunk = plan.events[start : start + size]
            if index and talk_pause:
                await asyncio.sleep(talk_pause)
            payload: dict[str, Any] = chunk[0] if len(chunk) == 1 else {"events": chunk}
            await budget.run(
                lambda payload=payload: client.report_usage(plan.call_id, payload),  # type: ignore[misc]
                "usage",
            )
        t_hangup = time.monotonic()
        await budget.run(lambda: client.hangup(plan.call_id, plan.outcome), "hangup")
        if balance_shown is not None:
            try:
                await asyncio.wait_for(
                    balance_shown(), t_hangup + balance_timeout - time.monotonic()
                )
                sample.hangup_to_balance_s = time.monotonic() - t_hangup
            except TimeoutError:
                sample.error = "balance not visible in time"
        sample.result = await budget.run(lambda: client.result(plan.call_id), "result")
        sample.hangup_to_result_s = time.monotonic() - t_hangup
        sample.ok = sample.error is None
    except (GaveUp, BillingClientError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        sample.retries = budget.retries
        sample.finished_at = time.monotonic()
        sample.total_s = sample.finished_at - started
    return sample


# --- seeding ---------------------------------------------------------------------------------


def seed_accounts(
    session_factory: sessionmaker[Session],
    count: int,
    *,
    top_up_paisa: int,
    prefix: str,
) -> list[str]:
    """Create `count` accounts with the ledger directly (no API needed) and top them up."""
    from db.session import run_in_transaction
    from ledger.accounts import create_account, top_up
    from ledger.policy import LedgerPolicy

    policy = LedgerPolicy()
    ids: list[str] = []
    for index in range(count):
        account_id = f"{prefix}-{index:04d}"

        def work(session: Session, account_id: str = account_id) -> None:
            create_account(
                session,
                policy,
                name=f"bench {account_id}",
                email=f"{account_id}@bench.invalid",
                account_id=account_id,
                idempotency_key=f"bench-account:{account_id}",
            )
            top_up(
                session,
                account_id=account_id,
                amount_paisa=top_up_paisa,
                payment_reference=f"bench-topup:{account_id}",
            )

        run_in_transaction(session_factory, work)
        ids.append(account_id)
    return ids


@dataclass
class Percentiles:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    values_ms: list[float] = field(default_factory=list, repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


def percentiles(seconds: list[float]) -> Percentiles:
    values = sorted(v * 1000 for v in seconds)
    if not values:
        return Percentiles(0, None, None, None, None, [])

    def pick(q: float) -> float:
        # nearest-rank percentile
        rank = max(1, int(Decimal(q * len(values)).to_integral_value(rounding="ROUND_CEILING")))
        return round(values[rank - 1], 1)

    return Percentiles(
        len(values), pick(0.50), pick(0.95), pick(0.99), round(values[-1], 1), values
    )
