"""The one process helper of the dev tooling: child processes with their output in a log file,
free ports, and waiting for a port or a URL. `dev.stack` (make serve/run), `bench` and the tests
start every server process through it; production code never imports it.

- `ChildProcess`: a command in its own session (a Ctrl-C on the terminal reaches only the parent,
  which stops its children in order), stdout+stderr appended to a log file (or this terminal),
  stopped with SIGTERM then SIGKILL, or killed outright as a crash would.
- `free_ports`, `free_port`, `port_in_use`, `wait_for_port`, `http_ok`, `wait_for_http`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

LOCALHOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1: all sockets stay bound until every port is known."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOCALHOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    return free_ports(1)[0]


def port_in_use(port: int) -> bool:
    """Something is bound there (connections in TIME_WAIT don't count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return True
        return False


def wait_for_port(port: int, timeout: float = 30.0, host: str = LOCALHOST) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not http_ok(url):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not answering 200 after {timeout:.0f}s")
        time.sleep(0.1)


def python_command(module: str, *args: str) -> list[str]:
    """`python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM when the thread that started it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ChildProcess:
    """`command` as a child process in its own session, its output appended to `log_path`
    (None: inherited, i.e. this terminal). `env` is laid over this process's environment.

    `die_with_parent` (Linux) makes the child get SIGTERM if its parent is killed outright; it
    needs a `preexec_fn`, which is only safe in a single-threaded parent such as dev.stack."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_path: str | os.PathLike[str] | None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stop_timeout: float = 10.0,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = Path(log_path) if log_path is not None else None
        self.env = dict(env or {})
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ChildProcess:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed when it stops
        self.process = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def poll(self) -> int | None:
        """The exit code, or None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float | None = None) -> bool:
        """SIGTERM, then SIGKILL to its process group after `timeout` (default `stop_timeout`).
        False when it had to be killed."""
        clean = True
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                clean = False
                self.kill()
        self._close_log()
        return clean

    def kill(self) -> None:
        """SIGKILL to its whole process group, as a crash would."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int | None = 40) -> str:
        """The last `lines` lines of its log (None: all of it); "" without a log file."""
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if lines is None else "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ChildProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
