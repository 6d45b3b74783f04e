"""`call_ledger_transaction`, the way every call's ledger transaction runs in the worker: the
hot path on the async pool, the Session on a thread when it answers None or there is no pool."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from activities.calls import call_ledger_transaction
from db.async_pool import open_async_pool


async def test_the_session_takes_over_only_when_the_hot_path_cannot(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    taken: list[str] = []

    def answer(value: str | None) -> Any:
        async def hot(conn: psycopg.AsyncConnection[Any]) -> str | None:
            cursor = await conn.execute("SELECT txid_current()")  # in a transaction
            assert await cursor.fetchone()
            taken.append("hot")
            return value

        return hot

    def cold(session: Session) -> str:
        assert session.execute(text("SELECT 1")).scalar() == 1
        taken.append("cold")
        return "session"

    pool = await open_async_pool(database_url, 1, name="test-activities")
    try:
        assert await call_ledger_transaction(pool, session_factory, answer("pool"), cold) == "pool"
        assert taken == ["hot"]
        taken.clear()
        assert await call_ledger_transaction(pool, session_factory, answer(None), cold) == "session"
        assert taken == ["hot", "cold"]
        taken.clear()
        assert await call_ledger_transaction(None, session_factory, answer("x"), cold) == "session"
        assert taken == ["cold"]
    finally:
        await pool.close()
