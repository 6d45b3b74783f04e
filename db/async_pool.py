"""The async PostgreSQL pool (psycopg_pool) of the hot paths (the API's osmAPI charges, the
worker's call transactions), and the one way to run a transaction on it: pipelined, retried on
conflicts like db.session.run_in_transaction.

A fixed number of connections (min = max: no churn), autocommit (a read is one round trip; a
write opens its own transaction), no check on checkout (a broken connection is discarded when it
fails, and the pool replaces it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from db.session import MAX_ATTEMPTS, RETRYABLE_SQLSTATES

T = TypeVar("T")
AsyncPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://) as libpq takes it."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


async def open_async_pool(url: str, size: int, name: str = "api-hot-path") -> AsyncPool:
    pool: AsyncPool = AsyncConnectionPool(
        libpq_url(url),
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True},
        open=False,
        name=name,
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def run_in_async_transaction(
    pool: AsyncPool,
    work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
) -> T:
    """Run `work` in one transaction in pipeline mode and commit; on a serialization failure,
    deadlock or a unique violation from a concurrent twin, run it again from the start."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with pool.connection() as conn, conn.pipeline(), conn.transaction():
                return await work(conn)
        except psycopg.Error as exc:
            if exc.sqlstate not in RETRYABLE_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
        await asyncio.sleep(0.002 * attempt)
    raise AssertionError("unreachable")
