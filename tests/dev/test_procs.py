"""dev.procs, the one process helper: real child processes, real sockets."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from dev.procs import (
    ChildProcess,
    free_ports,
    http_ok,
    port_in_use,
    python_command,
    wait_for_port,
)

# A child that says it is up, then waits; with IGNORE_TERM it shrugs off SIGTERM, and with
# GRANDCHILD it first starts a `sleep` in its own process group and prints that pid.
CHILD = """
import os, signal, subprocess, sys, time
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("GRANDCHILD"):
    print("grandchild", subprocess.Popen(["sleep", "60"]).pid, flush=True)
print("up", os.environ.get("GREETING", "-"), flush=True)
time.sleep(60)
"""


def _wait_for_text(child: ChildProcess, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while needle not in (text := child.tail(None)):
        assert child.alive(), text
        assert time.monotonic() < deadline, f"no {needle!r} in {text!r}"
        time.sleep(0.02)
    return text


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped by init) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" in status.read_text()


def test_a_child_logs_to_its_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    child = ChildProcess(
        "child", [sys.executable, "-c", CHILD], log_path=log, env={"GREETING": "hello"}
    )
    with child:
        _wait_for_text(child, "up hello")  # env laid over ours, output in the log file
        assert child.pid is not None and child.poll() is None
    assert child.poll() == -signal.SIGTERM
    assert child.tail(1) == "up hello"
    assert child.stop() is True  # stopping again is harmless


def test_a_child_that_ignores_sigterm_is_killed_with_its_process_group(tmp_path: Path) -> None:
    child = ChildProcess(
        "stubborn",
        [sys.executable, "-c", CHILD],
        log_path=tmp_path / "stubborn.log",
        env={"IGNORE_TERM": "1", "GRANDCHILD": "1"},
    ).start()
    try:
        text = _wait_for_text(child, "up")
        grandchild = int(text.split("grandchild ", 1)[1].split()[0])
        started = time.monotonic()
        assert child.stop(timeout=0.5) is False
        assert time.monotonic() - started < 10
        assert child.poll() == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while not _gone(grandchild):
            assert time.monotonic() < deadline, "the grandchild outlived the kill"
            time.sleep(0.05)
    finally:
        child.kill()


def test_kill_is_a_crash(tmp_path: Path) -> None:
    child = ChildProcess("victim", [sys.executable, "-c", CHILD], log_path=tmp_path / "v.log")
    child.start()
    _wait_for_text(child, "up")
    child.kill()
    assert not child.alive() and child.poll() == -signal.SIGKILL


def test_ports_and_waiting_for_them(tmp_path: Path) -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3 and not any(port_in_use(port) for port in ports)
    with pytest.raises(TimeoutError):
        wait_for_port(ports[0], timeout=0.3)
    assert not http_ok(f"http://127.0.0.1:{ports[0]}/")

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", ports[0]))
        listener.listen()
        assert port_in_use(ports[0])
        wait_for_port(ports[0], timeout=5)

    server = ChildProcess(
        "http",
        python_command("http.server", "--bind", "127.0.0.1", str(ports[1])),
        log_path=tmp_path / "http.log",
        cwd=tmp_path,
    )
    with server:
        wait_for_port(ports[1], timeout=10)
        assert http_ok(f"http://127.0.0.1:{ports[1]}/")
    assert not port_in_use(ports[1])
