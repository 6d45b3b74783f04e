"""db.session.run_in_transaction retries what a retry can fix: here, a pooled connection the
server dropped, so the worker's pool needs no pre-ping round trip per transaction."""

from __future__ import annotations

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from db.session import normalize_url, run_in_transaction


def test_a_dropped_pooled_connection_is_retried_on_a_new_one(database_url: str) -> None:
    engine = create_engine(
        normalize_url(database_url), pool_size=1, max_overflow=0, pool_pre_ping=False
    )
    factory = sessionmaker(bind=engine)
    attempts: list[int] = []

    def backend(session: Session) -> int:
        attempts.append(1)
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())

    try:
        first = run_in_transaction(factory, backend)
        # The pooled connection dies while idle (a server restart, an idle timeout).
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        attempts.clear()
        second = run_in_transaction(factory, backend)
        assert second != first and len(attempts) == 2
    finally:
        engine.dispose()
