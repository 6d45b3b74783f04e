"""PostgreSQL for dev and tests: DATABASE_URL when set, otherwise an embedded pgserver."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


def embedded_server_uri(data_dir: str | os.PathLike[str]) -> str:
    """Start (or join) a private PostgreSQL from the pgserver wheel; ~0.5 s, works as root.
    It keeps running after this process exits (a dev stack's database outlives commands)."""
    import pgserver  # only needed when no DATABASE_URL is given

    path = Path(data_dir).absolute()
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(path), cleanup_mode=None)
    return str(server.get_uri())


@contextmanager
def embedded_server(data_dir: str | os.PathLike[str]) -> Iterator[str]:
    """A private PostgreSQL that is stopped on leaving the block (tests: nothing left behind,
    even when the process later leaves through os._exit and skips atexit)."""
    import pgserver

    path = Path(data_dir).absolute()
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(path), cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def resolve_database_url(run_dir: str | os.PathLike[str] = ".run") -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return embedded_server_uri(Path(run_dir) / "pgdata")


def create_scratch_database(server_url: str, prefix: str = "billing_test") -> str:
    """Create a fresh database on the same server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_plain(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_database(server_url, name)


def drop_database(server_url: str, database_url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(_plain(database_url))["dbname"]
    with psycopg.connect(_plain(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)
