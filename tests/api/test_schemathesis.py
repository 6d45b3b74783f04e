"""Schemathesis against `/openapi.json` of a live API (real HTTP, real PostgreSQL, real Temporal
client) as an admin, a customer and an orchestrator key: examples and fuzzing phases, bounded per
operation. No 5xx, and every answer must match the documented schema, status codes and content
types. The command line is bench.fuzz's, whose long run (`make fuzz`) adds the coverage phase.

It runs on its own scratch database: fuzzing publishes rate cards and creates accounts, which
must not disturb the other tests' prices and balances. Calls with unknown accounts or call ids are
refused before Temporal; the worker runs anyway, as calls on fuzzed accounts it created are real.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.fuzz import HOOKS, count_cases, role_keys, schemathesis_command
from dev.postgres import create_scratch_database, drop_database
from dev.razorpay.standin import RazorpayStandIn
from tests.support.stack import RunningStack, start_stack, temporal_address

# Bounded for `make test` (a few hundred cases over the three keys); the long run with the
# coverage phase is `make fuzz` (bench.fuzz, docs/api.md).
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))


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


@pytest.fixture(scope="module")
def keys(fuzz_stack: RunningStack) -> dict[str, str]:
    return role_keys(fuzz_stack.base_url, fuzz_stack.admin_key)


def run_schemathesis(stack: RunningStack, role: str, key: str, tmp_path: Path) -> str:
    report = tmp_path / f"{role}.ndjson"
    result = subprocess.run(
        schemathesis_command(
            stack.base_url, key, phases="examples,fuzzing", max_examples=MAX_EXAMPLES, report=report
        ),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
    )
    output = result.stdout + result.stderr
    log_dir = Path(os.environ.get("SCHEMATHESIS_LOG_DIR", tmp_path))
    (log_dir / f"schemathesis-{role}.log").write_text(output)
    assert result.returncode == 0, output[-20000:]
    assert "No issues found" in output or "passed" in output, output[-5000:]
    cases, server_errors = count_cases(report)
    assert cases > 0 and server_errors == 0, (cases, server_errors)
    return output


@pytest.mark.parametrize("role", ["admin", "customer", "orchestrator"])
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
    fuzz_stack: RunningStack, keys: dict[str, str], role: str, tmp_path: Path
) -> None:
    """Every operation, as each kind of caller: documented answers only, never a 5xx (the
    customer's and orchestrator's 403/404 problems included)."""
    output = run_schemathesis(fuzz_stack, role, keys[role], tmp_path)
    selected = re.search(r"Operations:\s+(\d+) selected / (\d+) total", output)
    assert selected, output[-3000:]
    assert selected.group(1) == selected.group(2), selected.group(0)  # every operation
