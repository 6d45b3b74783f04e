"""PostgreSQL for the dev stack, the benchmark and the tests, from the pgserver wheel (~0.5 s to
start, works as root), plus scratch databases on any server.

- `embedded_billing_database(data_dir)`: the `make serve`/`make run` server and its `billing`
  database (dev.stack passes that URL to the API and the worker as DATABASE_URL).
- `embedded_server(data_dir)`: a private server for one test run, stopped on leaving the block.
- `PostgresProcess`: a server on a TCP port that the benchmark and the chaos tests can stop,
  crash and restart.
- `create_scratch_database` / `drop_database`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from dev.procs import free_port, wait_for_port


def _pgserver(data_dir: str | os.PathLike[str], cleanup_mode: str | None) -> Any:
    import warnings

    warnings.filterwarnings("ignore", module="platformdirs")  # XDG_RUNTIME_DIR unset: fine
    import pgserver

    path = Path(data_dir).absolute()
    path.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(path), cleanup_mode=cleanup_mode)


def embedded_billing_database(data_dir: str | os.PathLike[str]) -> tuple[Any, str]:
    """Start (or join) the embedded server in `data_dir`; returns it and the URL of its
    `billing` database, created on first use. The server stops when the caller lets go of it
    (`server.cleanup()`), unless another process still uses it."""
    server = _pgserver(data_dir, cleanup_mode="stop")
    with psycopg.connect(str(server.get_uri()), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'billing'").fetchone()
        if not exists:
            conn.execute("CREATE DATABASE billing")
    return server, str(server.get_uri("billing"))


@contextmanager
def embedded_server(data_dir: str | os.PathLike[str]) -> Iterator[str]:
    """A private PostgreSQL that is stopped on leaving the block (tests: nothing left behind,
    even when the process later leaves through os._exit and skips atexit)."""
    server = _pgserver(data_dir, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


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


class PostgresProcess:
    """PostgreSQL 16 from the pgserver wheel in `data_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self._system_user: str | None = None
        self._initialized = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60.0) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), *args]
        subprocess.run(
            command,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self._system_user,  # pgserver's unprivileged user when we run as root
        )

    def _initialize(self) -> None:
        """pgserver runs initdb with the right user and permissions (also as root); then we
        stop its socket-only server and run our own on a TCP port."""
        server = _pgserver(self.data_dir, cleanup_mode=None)
        self._system_user = server.system_user
        self._pg_ctl("-w", "-m", "fast", "stop")
        self._initialized = True

    def start(self) -> None:
        if not self._initialized:
            self._initialize()
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} "
            "-c max_connections=300 -c fsync=on -c synchronous_commit=on"
        )
        log = str(self.data_dir / "server.log")
        self._pg_ctl("-w", "-t", "60", "-l", log, "-o", options, "start")
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects clients and shuts down cleanly; `immediate` is a crash (recovery
        replays the WAL on the next start)."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self, mode: str = "immediate", down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("fast")
