"""ledger.repositories.statements.run_steps on the real database: a step that fetches nothing
rides with the next round trip or with the COMMIT, the COMMIT lands, and an error surfaces as
SQLAlchemy's DBAPIError (so run_in_transaction retries what it should)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ledger.repositories.statements import Statement, Steps, run_steps
from tests.ledger.conftest import uid

TABLE = "run_steps_probe"


@pytest.fixture(scope="module", autouse=True)
def probe_table(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        columns = "key text PRIMARY KEY, body text"
        session.execute(text(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})"))
        session.commit()


def _conn(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _write_then_count(key: str, body: str) -> Steps[int]:
    yield [Statement(f"INSERT INTO {TABLE} (key, body) VALUES (%s, %s)", (key, body), fetch=False)]
    rows = yield [Statement(f"SELECT count(*) FROM {TABLE} WHERE key = %s", (key,))]
    yield [Statement(f"UPDATE {TABLE} SET body = 'done' WHERE key = %s", (key,), fetch=False)]
    return int(rows[0][0][0])


def _count_then_write(key: str, body: str) -> Steps[int]:
    rows = yield [Statement(f"SELECT count(*) FROM {TABLE} WHERE key = %s", (key,))]
    yield [Statement(f"INSERT INTO {TABLE} (key, body) VALUES (%s, %s)", (key, body), fetch=False)]
    return int(rows[0][0][0])


def _body(session_factory: sessionmaker[Session], key: str) -> str | None:
    with session_factory() as session:
        found = session.execute(text(f"SELECT body FROM {TABLE} WHERE key = :k"), {"k": key})
        return found.scalar()


def test_a_write_goes_with_the_next_read_and_the_last_with_the_commit(
    session_factory: sessionmaker[Session],
) -> None:
    key = uid("steps")
    with session_factory() as session:
        # The insert was not waited for on its own, yet the read after it sees it.
        assert run_steps(_conn(session), _write_then_count(key, "x"), commit=lambda n: n == 1) == 1
        # Committed by the step's COMMIT: the session has nothing left to commit or lose.
        assert _conn(session).info.transaction_status == 0  # IDLE
        session.rollback()
    assert _body(session_factory, key) == "done"


def test_without_commit_the_last_write_waits_for_the_callers_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    key = uid("steps")
    with session_factory() as session:
        assert run_steps(_conn(session), _write_then_count(key, "x"), commit=lambda n: False) == 1
        session.rollback()  # the caller decides: nothing of it stays
    assert _body(session_factory, key) is None


def test_a_large_last_write_with_its_commit_does_not_wait_on_itself(
    session_factory: sessionmaker[Session],
) -> None:
    """A finalize with 25,000 pending events is a write of megabytes: sent with the COMMIT in
    one pipeline it must be flushed whole (conn.commit() inside the pipeline did not, and over
    a Unix socket the client and the server each waited for the other)."""
    key = uid("steps")
    body = "e" * (32 * 1024 * 1024)
    done: list[int] = []

    def run() -> None:
        with session_factory() as session:
            steps = _count_then_write(key, body)
            done.append(run_steps(_conn(session), steps, commit=lambda _: True))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done == [0], "run_steps did not finish: the pipeline waited for its own write"
    assert _body(session_factory, key) == body


def test_a_database_error_is_raised_as_dbapi_error(session_factory: sessionmaker[Session]) -> None:
    key = uid("steps")
    with session_factory() as session:
        run_steps(_conn(session), _write_then_count(key, "x"), commit=bool)
    with session_factory() as session, pytest.raises(DBAPIError) as raised:
        run_steps(_conn(session), _write_then_count(key, "x"), commit=bool)
    assert getattr(raised.value.orig, "sqlstate", None) == "23505"  # retried by run_in_transaction
