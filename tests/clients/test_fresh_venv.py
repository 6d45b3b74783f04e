"""The client distribution installed alone into a fresh venv (it pulls only temporalio) drives a
call end to end against the dev server and a billing worker, with none of the server's code or
dependencies importable there."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.clients.conftest import CLIENT_SRC
from tests.support.calls import Ledger, running_worker, uid

pytestmark = pytest.mark.slow  # ~40 s: a venv and a pip install

ORCHESTRATOR = """
import asyncio, json, sys
from osmtalk_billing_client import (
    BillingClient, UsageBatcher, llm_usage, stt_usage, tts_usage, sip_usage,
)

async def main(address, task_queue, account_id, call_id):
    billing = await BillingClient.connect(address, task_queue=task_queue)
    decision = await billing.authorize(call_id, account_id, "phone")
    async with UsageBatcher(billing, call_id, interval=0.2) as usage:
        await usage.add(llm_usage("openai/gpt-4o-mini", input_tokens=24000, output_tokens=2000))
        await usage.add(stt_usage("deepgram/nova-3", audio_seconds=60))
        await usage.add(tts_usage("elevenlabs/flash-v2", characters=550))
        await usage.add(sip_usage("plivo/in-outbound", seconds=60))
        await usage.hangup("completed")
    result = await billing.result(call_id)
    print(json.dumps({
        "authorized": decision.authorized,
        "charged": result.charged,
        "total_paisa": result.breakdown.total_paisa,
        "events": result.usage_event_count,
    }))

asyncio.run(main(*sys.argv[1:]))
"""


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}  # no PYTHONPATH, no server code
    for name in ("PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT", "PIP_CERT", "PIP_INDEX_URL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


async def test_the_client_installed_alone_drives_a_call(
    tmp_path: Path,
    workflow_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
    ledger: Ledger,
) -> None:
    venv = tmp_path / "venv"
    source = tmp_path / "osmtalk-billing-client"
    shutil.copytree(CLIENT_SRC.parent, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    made = await asyncio.to_thread(_run, [sys.executable, "-m", "venv", str(venv)], tmp_path, 120)
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    installed = await asyncio.to_thread(
        _run, [python, "-m", "pip", "install", "-q", str(source)], tmp_path, 600
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = await asyncio.to_thread(
        _run, [python, "-m", "pip", "list", "--format=json"], tmp_path, 60
    )
    packages = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"osmtalk-billing-client", "temporalio"} <= packages
    assert not packages & {"fastapi", "sqlalchemy", "sendgrid", "psycopg", "pydantic"}, packages
    isolated = await asyncio.to_thread(
        _run, [python, "-c", "import domain"], tmp_path, 60
    )  # the server's packages are not reachable from there
    assert isolated.returncode != 0

    account_id = ledger.account(paid=0, promo=5000)
    call_id = uid("venv-call")
    queue = uid("venv")
    address = workflow_env.client.service_client.config.target_host
    async with running_worker(workflow_env.client, session_factory, task_queue=queue):
        script = tmp_path / "orchestrator.py"
        script.write_text(ORCHESTRATOR)
        ran = await asyncio.to_thread(
            _run, [python, str(script), address, queue, account_id, call_id], tmp_path, 120
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    outcome = json.loads(ran.stdout.strip().splitlines()[-1])
    assert outcome == {"authorized": True, "charged": True, "total_paisa": 442, "events": 4}
    assert ledger.balance(account_id).promo_paisa == 5000 - 442
