"""The bench's balance observer against a real PostgreSQL: it resolves a wait only once the
account's row shows the expected available balance with nothing reserved, and forgets a wait
its caller gave up on."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from bench.load import BalancePoller, seed_accounts
from db.async_pool import libpq_url


async def test_a_wait_resolves_when_the_row_shows_the_balance_and_nothing_reserved(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    prefix = f"poller-{uuid.uuid4().hex[:8]}"
    account, other = seed_accounts(session_factory, 2, top_up_paisa=10_000, prefix=prefix)
    poller = BalancePoller(database_url, interval=0.01)
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    async with await psycopg.AsyncConnection.connect(
        libpq_url(database_url), autocommit=True
    ) as conn:

        async def set_row(account_id: str, paid: int, reserved: int) -> None:
            await conn.execute(
                "UPDATE accounts SET paid_paisa = %s, promo_paisa = 0, reserved_paisa = %s "
                "WHERE id = %s",
                (paid, reserved, account_id),
            )

        try:
            shown = poller.wait(account, 9_000)
            given_up = poller.wait(other, 1)
            await set_row(account, 9_000, 500)  # the charge shows, its hold is not released yet
            await asyncio.sleep(0.05)
            assert not shown.done()
            given_up.cancel()
            before = time.monotonic()
            await set_row(account, 9_000, 0)
            seen = await asyncio.wait_for(shown, 2)
            assert before <= seen <= time.monotonic()
            await asyncio.sleep(0.05)
            assert poller.waiting == {}  # the cancelled wait was dropped, the other resolved
        finally:
            stop.set()
            await polling
