"""Engine, sessions, and the one way to run a ledger transaction: retried on conflicts."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# serialization_failure, deadlock_detected, unique_violation (a concurrent twin committed
# first: the retry finds its row and replays it).
RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
MAX_ATTEMPTS = 8


def normalize_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=8)
def get_engine(
    url: str, pool_size: int = 10, max_overflow: int = 20, pre_ping: bool = True
) -> Engine:
    """`pool_size` + `max_overflow` connections; overflow ones are closed when returned, so a
    process whose concurrency is known (the API) sizes the pool to it with no overflow and no
    pre-ping round trip per checkout."""
    return create_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
    )


@lru_cache(maxsize=8)
def get_sessionmaker(
    url: str, pool_size: int = 10, max_overflow: int = 20, pre_ping: bool = True
) -> sessionmaker[Session]:
    return sessionmaker(
        bind=get_engine(url, pool_size, max_overflow, pre_ping), expire_on_commit=False
    )


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _retryable(exc: DBAPIError) -> bool:
    # A lost connection (the server restarted, a pooled connection went stale: the pool is
    # invalidated and the next attempt connects anew) is retried too, so a pool needs no
    # pre-ping round trip per transaction. Every ledger operation is idempotent, so even a
    # COMMIT that landed before the connection was lost is safe to run again.
    return exc.connection_invalidated or _sqlstate(exc) in RETRYABLE_SQLSTATES


def run_in_transaction(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction and commit; on a serialization failure, deadlock, a
    unique violation from a concurrent twin or a lost connection, roll back and run it again
    from the start."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with factory() as session:
            try:
                result = work(session)
                session.commit()
                return result
            except DBAPIError as exc:
                session.rollback()
                if not _retryable(exc) or attempt == MAX_ATTEMPTS:
                    raise
            time.sleep(0.002 * attempt)
    raise AssertionError("unreachable")
