"""One usage checkpoint's cost, no Temporal: N checkpoints of one second's usage (4 events) on
a few calls in a scratch database, each one transaction through a Session on this thread
(`run_in_transaction`, as the `call_checkpoint` activity runs it without a ledger pool), then N
more on an async pool on an event loop (`activities.calls.call_ledger_transaction`, as it runs
with one); prints Python CPU and wall ms per checkpoint for each, then for retries of committed
batches, and checks the ledger.

    DATABASE_URL=postgresql://… python -m bench.checkpoint_micro [N] [--profile]

Compare trees back to back: a tree without this module runs a copy of it kept outside bench/
(`python /tmp/checkpoint_micro.py` with PYTHONPATH=<tree>). `--profile`: cProfile's top 40."""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from activities.calls import call_ledger_transaction
from bench.capacity import second_of_usage
from db.async_pool import open_async_pool
from db.migrate import upgrade
from db.session import get_engine, get_sessionmaker, run_in_transaction
from dev.postgres import create_scratch_database, drop_database
from domain.contracts.call_usage import UsageCheckpoint, events_to_json
from domain.rating import validate_usage_event
from ledger import accounts, call_usage, calls, rate_cards
from ledger.invariants import check_ledger
from ledger.policy import LedgerPolicy

CALLS = 4
WARM_UP = 20


def timed(
    label: str, requests: Sequence[UsageCheckpoint], one: Callable[[UsageCheckpoint], object]
) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    for request in requests:
        one(request)
    report(label, len(requests), time.process_time() - cpu, time.perf_counter() - wall)


def report(label: str, count: int, cpu: float, wall: float) -> None:
    print(
        f"{count} {label}: cpu {1000 * cpu / count:.3f} ms, wall {1000 * wall / count:.3f} ms each"
    )


def main(argv: list[str]) -> None:
    count = int(next((a for a in argv if a.isdigit()), "500"))
    server = os.environ["DATABASE_URL"]
    url = create_scratch_database(server, prefix="checkpoint_micro")
    try:
        upgrade(url)
        factory = get_sessionmaker(url)
        policy = LedgerPolicy()

        def tx(work: Callable[[Session], object]) -> object:
            return run_in_transaction(factory, work)

        account, _ = run_in_transaction(
            factory,
            lambda s: accounts.create_account(s, policy, name="Bench", email="bench@example.com"),
        )
        tx(lambda s: accounts.top_up(
            s, account_id=account.id, amount_paisa=50_000_000, payment_reference="bench"
        ))  # fmt: skip
        card = run_in_transaction(factory, rate_cards.current_rate_card)
        call_ids = [f"call-{n}" for n in range(CALLS)]
        for call_id in call_ids:
            tx(lambda s, c=call_id: calls.authorize_call(  # type: ignore[misc]
                s, policy, call_id=c, account_id=account.id, channel="phone"
            ))  # fmt: skip
        rng = random.Random(1)
        requests = []
        for n in range(2 * (count + WARM_UP)):
            call_id = call_ids[n % CALLS]
            events = [
                validate_usage_event(e, "phone", card) for e in second_of_usage(call_id, n, rng)
            ]
            requests.append(UsageCheckpoint(call_id, f"run:{n}", events_to_json(events)))
        requests, on_pool = requests[: count + WARM_UP], requests[count + WARM_UP :]

        def one(request: UsageCheckpoint) -> object:
            return tx(lambda s: call_usage.checkpoint_usage(s, request, ends_transaction=True))

        for request in requests[:WARM_UP]:
            one(request)
        profile = cProfile.Profile() if "--profile" in argv else None
        if profile:
            profile.enable()
        timed("checkpoints", requests[WARM_UP:], one)
        if profile:
            profile.disable()
        timed("retries", requests[WARM_UP : WARM_UP + 100], one)
        asyncio.run(_on_pool(url, factory, on_pool))
        with factory() as session:
            print("invariant violations:", check_ledger(session))
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    finally:
        get_engine(url).dispose()
        drop_database(server, url)


async def _on_pool(
    url: str, factory: sessionmaker[Session], requests: list[UsageCheckpoint]
) -> None:
    pool = await open_async_pool(url, 1, name="checkpoint-micro")
    try:

        async def one(request: UsageCheckpoint) -> object:
            return await call_ledger_transaction(
                pool,
                factory,
                lambda conn: call_usage.checkpoint_usage_async(conn, request),
                lambda s: call_usage.checkpoint_usage(s, request, ends_transaction=True),
            )

        for request in requests[:WARM_UP]:
            await one(request)
        cpu, wall = time.process_time(), time.perf_counter()
        for request in requests[WARM_UP:]:
            await one(request)
        report(
            "checkpoints on the pool",
            len(requests) - WARM_UP,
            time.process_time() - cpu,
            time.perf_counter() - wall,
        )
    finally:
        await pool.close()


if __name__ == "__main__":
    main(sys.argv[1:])
