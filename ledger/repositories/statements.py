"""Plain SQL statements run on the psycopg connection itself, for the ledger's hot paths.

An operation is written once as a generator of steps (sans I/O): it yields a list of
`Statement`s and receives their rows. `run_steps` runs it on a synchronous psycopg connection
(the one under a SQLAlchemy Session, inside the session's transaction), `run_steps_async` on an
async one (the API's pool). Each step is sent as one pipeline (one network round trip); a step
whose statements fetch nothing is not even waited for, so the last write of a transaction goes
out together with its COMMIT.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

import psycopg
from opentelemetry import trace

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


def run_steps(conn: psycopg.Connection[Any], steps: Steps[R]) -> R:
    """Drive `steps` on a synchronous connection (already in a transaction)."""
    try:
        batch = next(steps)
        while True:
            with _span() as span, conn.pipeline():
                _describe(span, batch)
                cursors = [conn.execute(s.sql, s.params) for s in batch]
            rows = [
                list(cursor.fetchall()) if s.fetch else []
                for s, cursor in zip(batch, cursors, strict=True)
            ]
            batch = steps.send(rows)
    except StopIteration as stop:
        result: R = stop.value
        return result


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
