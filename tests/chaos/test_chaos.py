"""Chaos: real processes, real crashes, then proof that no paisa was lost or doubled.

One private stack (bench.stack: PostgreSQL on its own data directory, the Temporal dev server on
an on-disk SQLite database, `python -m worker` as a subprocess). Each scenario plays CALLS calls
arriving over a few seconds, each lasting a second or two (usage in two signals with a pause),
so the fault hits calls in every stage: authorizing, mid-call, finalizing. Clients retry through
the outage on the contract's idempotency (call_id, authorize update id, event_id, first hangup).

Faults: (a) kill -9 the worker and start a new one; (b) restart the Temporal dev server on its
database file; (c) restart PostgreSQL (immediate mode: a crash, WAL recovery on start).

Afterwards, for the scenario's accounts: ledger.invariants.check_ledger finds nothing (Σ journal
= balances, one charge per charged call, none for voided calls, holds settled once); every call
is finalized with the outcome the generator chose and charged exactly the price the generator
computed; no hold is active; Σ charges = Σ expected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from bench.load import CallPlan, CallSample, drive_call, make_plan, seed_accounts
from bench.stack import Stack
from db.session import get_engine, get_sessionmaker
from domain.ledger_types import REASON_BILLING_UNAVAILABLE
from ledger.invariants import check_ledger
from orchestrator_client import BillingClient

CALLS = 100  # per scenario: 300 in all
ARRIVAL_SECONDS = 6.0  # calls arrive over this window ...
FAULT_AT_SECONDS = 2.5  # ... and the fault strikes this far into it
ACCOUNTS = 20
CALL_TIMEOUT = 150.0


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="billing-chaos-") as work_dir:
        # Always a private PostgreSQL, even when DATABASE_URL is set: we restart it.
        stack = Stack(work_dir, temporal_db="file", with_api=False, with_baseline=False)
        with stack:
            yield stack
        get_engine(stack.database_url).dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def billing(stack: Stack) -> AsyncIterator[BillingClient]:
    yield await BillingClient.connect(stack.temporal.address)


async def play(
    stack: Stack,
    billing: BillingClient,
    name: str,
    fault: Callable[[], None],
) -> tuple[list[CallPlan], list[CallSample], list[str]]:
    factory = get_sessionmaker(stack.database_url)
    accounts = await asyncio.to_thread(
        seed_accounts, factory, ACCOUNTS, top_up_paisa=5_000_000, prefix=f"chaos-{name}"
    )
    rng = random.Random(f"chaos-{name}")
    plans = [make_plan(f"chaos-{name}-{i:04d}", accounts[i % ACCOUNTS], rng) for i in range(CALLS)]

    async def one(index: int, plan: CallPlan) -> CallSample:
        await asyncio.sleep(index * ARRIVAL_SECONDS / CALLS)
        return await drive_call(
            billing,
            plan,
            batched=False,
            usage_signals=2,
            talk_pause=rng.uniform(0.3, 2.0),
            timeout=CALL_TIMEOUT,
        )

    window: list[float] = []

    async def strike() -> None:
        await asyncio.sleep(FAULT_AT_SECONDS)
        window.append(time.monotonic())
        await asyncio.to_thread(fault)
        window.append(time.monotonic())

    started = time.monotonic()
    results = await asyncio.gather(
        strike(), *(one(i, plan) for i, plan in enumerate(plans)), return_exceptions=True
    )
    fault_outcome, samples = results[0], list(results[1:])
    if isinstance(fault_outcome, BaseException):
        raise fault_outcome
    for sample in samples:
        if isinstance(sample, BaseException):
            raise sample
    elapsed = time.monotonic() - started
    typed = [s for s in samples if isinstance(s, CallSample)]
    # The fault must really have hit calls in flight, or this test proves nothing.
    spanning = [
        s
        for s in typed
        if s.finished_at - (s.total_s or 0) < window[0] and s.finished_at > window[1]
    ]
    retries = sum(s.retries for s in typed)
    print(
        f"\n{name}: {CALLS} calls in {elapsed:.1f}s; fault took {window[1] - window[0]:.1f}s with "
        f"{len(spanning)} calls in flight across it; {retries} retries beyond the SDK's own"
    )
    assert len(spanning) >= 10, f"only {len(spanning)} calls were in flight during the fault"
    return plans, typed, accounts


def verify(
    stack: Stack, plans: list[CallPlan], samples: list[CallSample], accounts: list[str]
) -> None:
    # While PostgreSQL is down (and recovering) billing cannot decide: the contract's answer is
    # billing_unavailable with no hold left; such a call must cost nothing. Every other call
    # completes.
    unavailable = {
        s.call_id for s in samples if s.ok and s.error == f"refused: {REASON_BILLING_UNAVAILABLE}"
    }
    failed = [
        (s.call_id, s.error)
        for s in samples
        if (not s.ok or not s.authorized) and s.call_id not in unavailable
    ]
    assert not failed, f"calls did not complete: {failed[:5]}\n{stack.logs()}"
    assert len(unavailable) <= len(samples) // 4, f"{len(unavailable)} calls refused"

    factory = get_sessionmaker(stack.database_url)
    with factory() as session:
        violations = check_ledger(session, accounts)
        assert not violations, "\n".join(str(v) for v in violations[:20])
        rows = {
            row.call_id: row
            for row in session.execute(
                text(
                    "SELECT call_id, status, outcome, total_paisa, transaction_id FROM calls "
                    "WHERE account_id = ANY(:ids)"
                ),
                {"ids": accounts},
            )
        }
        charges: dict[str, list[int]] = {}
        for reference, amount in session.execute(
            text(
                "SELECT reference, amount_paisa FROM ledger_transactions "
                "WHERE kind = 'call_charge' AND account_id = ANY(:ids)"
            ),
            {"ids": accounts},
        ):
            charges.setdefault(reference, []).append(-amount)
        active_holds = session.execute(
            text("SELECT count(*) FROM holds WHERE status = 'active' AND account_id = ANY(:ids)"),
            {"ids": accounts},
        ).scalar_one()
        reserved = session.execute(
            text("SELECT COALESCE(SUM(reserved_paisa), 0) FROM accounts WHERE id = ANY(:ids)"),
            {"ids": accounts},
        ).scalar_one()

    assert len(rows) <= len(plans) and all(
        p.call_id in rows for p in plans if p.call_id not in unavailable
    ), "every authorized call has exactly one ledger call row"
    problems: list[str] = []
    for plan in plans:
        row = rows.get(plan.call_id)
        if plan.call_id in unavailable:
            if row is not None and (row.status, row.outcome) != ("finalized", "refused"):
                problems.append(
                    f"{plan.call_id}: refused as unavailable but {row.status}/{row.outcome}"
                )
            if charges.get(plan.call_id):
                problems.append(f"{plan.call_id}: refused as unavailable but charged")
            continue
        if row is None:
            problems.append(f"{plan.call_id}: no call row")
            continue
        if row.status != "finalized" or row.outcome != plan.outcome:
            problems.append(f"{plan.call_id}: {row.status}/{row.outcome}, planned {plan.outcome}")
        posted = charges.get(plan.call_id, [])
        want = [plan.expected_total_paisa] if plan.expected_total_paisa else []
        if posted != want:
            problems.append(f"{plan.call_id}: charges {posted}, expected {want}")
    assert not problems, "\n".join(problems[:20])
    assert active_holds == 0 and reserved == 0, "a hold is left active"
    expected_total = sum(p.expected_total_paisa for p in plans if p.call_id not in unavailable)
    charged_total = sum(sum(v) for v in charges.values())
    assert charged_total == expected_total, (charged_total, expected_total)
    assert expected_total > 0  # the load really charged something
    assert any(p.expected_total_paisa == 0 for p in plans)  # ... and voided something


def kill_worker(stack: Stack) -> Callable[[], None]:
    def fault() -> None:
        assert stack.worker is not None and stack.worker.alive()
        stack.kill_worker()  # SIGKILL: no graceful shutdown, tasks in flight are lost
        time.sleep(1.0)
        stack.start_worker()

    return fault


def restart_temporal(stack: Stack) -> Callable[[], None]:
    def fault() -> None:
        stack.temporal.restart(down_seconds=2.0)

    return fault


def restart_postgres(stack: Stack) -> Callable[[], None]:
    def fault() -> None:
        assert stack.postgres is not None
        stack.postgres.restart(mode="immediate", down_seconds=2.0)

    return fault


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "name,make_fault",
    [
        ("kill-worker", kill_worker),
        ("restart-temporal", restart_temporal),
        ("restart-postgres", restart_postgres),
    ],
)
async def test_no_paisa_lost_or_doubled(
    stack: Stack, billing: BillingClient, name: str, make_fault: Any
) -> None:
    plans, samples, accounts = await play(stack, billing, name, make_fault(stack))
    await asyncio.to_thread(verify, stack, plans, samples, accounts)
    # The checks can fail: one paisa off in what the generator expected is caught.
    completed = {s.call_id for s in samples if s.authorized}
    charged = next(
        i for i, p in enumerate(plans) if p.expected_total_paisa and p.call_id in completed
    )
    tampered = list(plans)
    tampered[charged] = dataclasses.replace(
        plans[charged], expected_total_paisa=plans[charged].expected_total_paisa + 1
    )
    with pytest.raises(AssertionError, match="expected"):
        await asyncio.to_thread(verify, stack, tampered, samples, accounts)
