"""Schemathesis against `/openapi.json` of a live API (real HTTP, real PostgreSQL, real Temporal
client): examples, coverage and fuzzing phases, bounded per operation. No 5xx, and every answer
must match the documented schema, status codes and content types.

It runs on its own scratch database: fuzzing publishes rate cards and creates accounts, which
must not disturb the other tests' prices and balances. Calls with unknown accounts or call ids are
refused before Temporal; the worker runs anyway, as calls on fuzzed accounts it created are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from dev.postgres import create_scratch_database, drop_database
from dev.razorpay.standin import RazorpayStandIn
from tests.support.stack import RunningStack, start_stack, temporal_address

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "60"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


@pytest.fixture(scope="module")
def fuzz_stack(
    postgres_server_url: str, workflow_env: WorkflowEnvironment
) -> Iterator[RunningStack]:
    url = create_scratch_database(postgres_server_url, prefix="billing_fuzz")
    try:
        # Payments configured (the Razorpay stand-in): checkouts are real, not a 503.
        with RazorpayStandIn(duplicate_probability=0) as standin:
            razorpay = {
                "razorpay_key_id": standin.key_id,
                "razorpay_key_secret": standin.key_secret,
                "razorpay_webhook_secret": "fuzz-webhook-secret",
                "razorpay_api_url": standin.url,
            }
            with start_stack(
                url,
                temporal_address(workflow_env),
                with_worker=True,
                # Its own queue: the other stacks' workers use another database.
                task_queue=f"billing-fuzz-{uuid.uuid4().hex[:8]}",
                settings=razorpay,
                worker_env={k.upper(): v for k, v in razorpay.items()},
            ) as running:
                yield running
    finally:
        drop_database(postgres_server_url, url)


def run_schemathesis(
    stack: RunningStack, key: str, phases: str, max_examples: int, tmp_path: Path
) -> None:
    st = Path(sys.executable).parent / "st"
    command = [
        str(st),
        "run",
        f"{stack.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--include-path-regex",
        "^/(v1/|healthz)",
        # One worker: CPython 3.11's ast.parse is not thread-safe under hypothesis (a
        # "recursion depth mismatch" runtime error with several workers).
        "--workers",
        "1",
        "--seed",
        "20261128",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    output = result.stdout + result.stderr
    (Path(os.environ.get("SCHEMATHESIS_LOG_DIR", tmp_path)) / "schemathesis.log").write_text(output)
    assert result.returncode == 0, output[-20000:]
    assert "No issues found" in output or "passed" in output, output[-5000:]


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
    fuzz_stack: RunningStack, tmp_path: Path
) -> None:
    """As admin (every operation reachable): examples, coverage and fuzzing."""
    run_schemathesis(
        fuzz_stack, fuzz_stack.admin_key, "examples,coverage,fuzzing", MAX_EXAMPLES, tmp_path
    )


def test_schemathesis_as_a_customer_gets_documented_refusals(
    fuzz_stack: RunningStack, tmp_path: Path
) -> None:
    """As a customer key: its 403/404 problem answers are documented and well-formed too."""
    created = httpx.post(
        f"{fuzz_stack.base_url}/v1/accounts",
        json={"name": "Fuzz customer", "email": "fuzz@x.example"},
        headers={"Authorization": f"Bearer {fuzz_stack.admin_key}"},
    )
    assert created.status_code == 201, created.text
    run_schemathesis(fuzz_stack, created.json()["api_key"]["key"], "examples,fuzzing", 15, tmp_path)
