"""Plain SQL statements run on the psycopg connection itself, for the ledger's hot paths.

An operation is written once as a generator of steps (sans I/O): it yields a list of
`Statement`s and receives their rows. `run_steps` runs it on a synchronous psycopg connection
(the one under a SQLAlchemy Session, inside the session's transaction), `run_steps_async` on an
async one (the API's pool). Each step is sent as one pipeline (one network round trip); a step
whose statements fetch nothing is not even waited for, so the last write of a transaction goes
out together with its COMMIT: on the async connection the caller's COMMIT flushes it; on the
synchronous one it goes with the next step's pipeline, or, when the operation says the
transaction is done (`commit`), with a COMMIT of its own (SQLAlchemy's commit that follows finds
nothing left to commit). Errors are raised as SQLAlchemy's `DBAPIError`, so
`db.session.run_in_transaction` retries a deadlock or a serialization failure here too.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

import psycopg
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError

R = TypeVar("R")
# One client span per round trip, as SQLAlchemy's instrumentation gives the ORM's statements, so
# a call's or a charge's ledger SQL still shows in its trace.
tracer = trace.get_tracer(__name__)
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Statement:
    sql: LiteralString
    params: Sequence[Any] | Mapping[str, Any] = ()
    fetch: bool = True  # False: nothing to read (an INSERT or UPDATE without RETURNING)


Steps = Generator[list[Statement], list[list[Row]], R]


def _span() -> AbstractContextManager[trace.Span]:
    return tracer.start_as_current_span("ledger sql", kind=trace.SpanKind.CLIENT)


def _describe(span: trace.Span, batch: list[Statement]) -> None:
    """The statements, only on a span that is recorded (core.tracing.ExportedOnly)."""
    if span.is_recording():
        span.set_attributes(
            {
                "db.system": "postgresql",
                "db.statement": ";\n".join(s.sql.strip() for s in batch),
            }
        )


def run_steps(
    conn: psycopg.Connection[Any],
    steps: Steps[R],
    *,
    commit: Callable[[R], bool] | None = None,
) -> R:
    """Drive `steps` on a synchronous connection (already in a transaction). A step that
    fetches nothing waits for the next one's round trip; after the last step, `commit(result)`
    true sends the remaining writes with a COMMIT (only when nothing else is to be written in
    this transaction), else they are sent on their own."""
    try:
        return _drive(conn, steps, commit)
    except psycopg.Error as exc:  # as SQLAlchemy raises it, so run_in_transaction retries it
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc


def _drive(conn: psycopg.Connection[Any], steps: Steps[R], commit: Callable[[R], bool] | None) -> R:
    writes: list[Statement] = []  # sent, not waited for, with the next round trip
    try:
        batch = next(steps)
        while True:
            if not any(s.fetch for s in batch):
                writes.extend(batch)
                batch = steps.send([[] for _ in batch])
                continue
            cursors = _send(conn, writes + batch)[len(writes) :]
            writes = []
            rows = [
                list(cursor.fetchall()) if s.fetch else []
                for s, cursor in zip(batch, cursors, strict=True)
            ]
            batch = steps.send(rows)
    except StopIteration as stop:
        result: R = stop.value
        if writes:
            _send(conn, writes, commit=commit is not None and commit(result))
        return result


def _send(
    conn: psycopg.Connection[Any], batch: list[Statement], *, commit: bool = False
) -> list[psycopg.Cursor[Any]]:
    """One pipeline: the statements (and a COMMIT), one round trip. The COMMIT is a statement
    of the pipeline, not `conn.commit()`: inside a pipeline that syncs without flushing the
    output first, and with a large write still buffered (a finalize with thousands of pending
    events, over a Unix socket) client and server each waited for the other. The pipeline's
    exit flushes everything."""
    with _span() as span, conn.pipeline():
        _describe(span, batch)
        cursors = [conn.execute(s.sql, s.params) for s in batch]
        if commit:
            conn.execute("COMMIT")
    return cursors


async def run_steps_async(conn: psycopg.AsyncConnection[Any], steps: Steps[R]) -> R:
    """Drive `steps` on an async connection in pipeline mode inside a transaction
    (db.async_pool.run_in_async_transaction); the caller's COMMIT flushes the last step."""
    try:
        batch = next(steps)
        while True:
            with _span() as span:
                _describe(span, batch)
                cursors = []
                for statement in batch:
                    cursor = conn.cursor()
                    await cursor.execute(statement.sql, statement.params)
                    cursors.append(cursor)
                rows: list[list[Row]] = []
                for statement, cursor in zip(batch, cursors, strict=True):
                    rows.append(list(await cursor.fetchall()) if statement.fetch else [])
            batch = steps.send(rows)
    except StopIteration as stop:
        result: R = stop.value
        return result


async def fetch_async(conn: psycopg.AsyncConnection[Any], statement: Statement) -> list[Row]:
    """One statement's rows (an autocommit connection: one round trip)."""
    cursor = await conn.execute(statement.sql, statement.params)
    return list(await cursor.fetchall()) if statement.fetch else []
