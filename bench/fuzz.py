"""`make fuzz`: schemathesis against `/openapi.json` of a private stack (bench.stack: its own
PostgreSQL database, Temporal dev server, worker and API on free ports, payments on the Razorpay
stand-in), as an admin, a customer and an orchestrator key, with the checks of
tests/api/test_schemathesis.py (no 5xx; status codes, content types and bodies as documented).

    python -m bench.fuzz                       # the long run: ≥ 10,000 cases (docs/api.md)
    python -m bench.fuzz --max-examples 10     # a quick look
    DATABASE_URL=postgresql://… python -m bench.fuzz   # a scratch database on that server

Fuzzing publishes rate cards and creates accounts, so it never runs on a database that matters.
It prints one line per role and a summary, writes it as JSON (`--out`), and exits non-zero when
schemathesis found anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
OPERATIONS = "^/(v1/|healthz)"  # every operation in the document
SEED = 20261128
HOOKS = Path(__file__).with_name("fuzz_hooks.py")


def schemathesis_command(
    base_url: str, key: str, *, phases: str, max_examples: int, report: Path | None = None
) -> list[str]:
    """The one `st run` command line (the test in `make test` and this long run)."""
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--include-path-regex",
        OPERATIONS,
        # One worker: CPython 3.11's ast.parse is not thread-safe under hypothesis (a
        # "recursion depth mismatch" runtime error with several workers).
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if report is not None:
        command += ["--report", "ndjson", "--report-ndjson-path", str(report)]
    return command


@dataclass
class RoleRun:
    role: str
    operations: int
    cases: int
    server_errors: int
    failures: int
    exit_code: int
    seconds: float


def count_cases(report: Path) -> tuple[int, int]:
    """(test cases sent, answers with a 5xx) from schemathesis's ndjson event report."""
    cases = server_errors = 0
    for line in report.read_text().splitlines():
        if '"ScenarioFinished"' not in line:
            continue
        recorder = json.loads(line)["ScenarioFinished"].get("recorder") or {}
        for interaction in (recorder.get("interactions") or {}).values():
            cases += 1
            status = (interaction.get("response") or {}).get("status_code") or 0
            server_errors += status >= 500
    return cases, server_errors


def run_role(
    base_url: str, role: str, key: str, *, phases: str, max_examples: int, work_dir: Path
) -> RoleRun:
    report = work_dir / f"{role}.ndjson"
    started = time.monotonic()
    result = subprocess.run(
        schemathesis_command(
            base_url, key, phases=phases, max_examples=max_examples, report=report
        ),
        capture_output=True,
        text=True,
        cwd=work_dir,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
    )
    output = result.stdout + result.stderr
    (work_dir / f"{role}.log").write_text(output)
    cases, server_errors = count_cases(report) if report.exists() else (0, 0)
    failures = re.search(r"(\d+) failures?", output)
    operations = re.search(r"(\d+) operations? selected", output) or re.search(
        r"Operations:\s+(\d+)", output
    )
    return RoleRun(
        role=role,
        operations=int(operations.group(1)) if operations else 0,
        cases=cases,
        server_errors=server_errors,
        failures=int(failures.group(1)) if failures and result.returncode else 0,
        exit_code=result.returncode,
        seconds=round(time.monotonic() - started, 1),
    )


def role_keys(base_url: str, admin_key: str) -> dict[str, str]:
    """An admin, a customer (with its account) and an orchestrator key."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as http:
        created = http.post("/v1/accounts", json={"name": "Fuzz", "email": "fuzz@x.example"})
        created.raise_for_status()
        orchestrator = http.post("/v1/api-keys", json={"role": "orchestrator"})
        orchestrator.raise_for_status()
    return {
        "admin": admin_key,
        "customer": created.json()["api_key"]["key"],
        "orchestrator": orchestrator.json()["key"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument(
        "--max-examples", type=int, default=200, help="per operation and phase (admin)"
    )
    parser.add_argument("--phases", default="examples,coverage,fuzzing", help="schemathesis phases")
    parser.add_argument("--out", default=".run/fuzz/summary.json", help="summary JSON")
    args = parser.parse_args(argv)

    from bench.stack import Stack
    from dev.razorpay.standin import RazorpayStandIn

    out = Path(args.out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="billing-fuzz-") as tmp,
        # Payments configured (the Razorpay stand-in; the stack's processes inherit this
        # environment): checkouts are real, not 503 payments_not_configured.
        RazorpayStandIn(duplicate_probability=0) as standin,
    ):
        os.environ.update(
            RAZORPAY_KEY_ID=standin.key_id,
            RAZORPAY_KEY_SECRET=standin.key_secret,
            RAZORPAY_WEBHOOK_SECRET="fuzz-webhook-secret",
            RAZORPAY_API_URL=standin.url,
        )
        work_dir = Path(tmp)
        external = os.environ.get("DATABASE_URL") or None
        with Stack(work_dir / "stack", database_url=external) as stack:
            keys = role_keys(stack.api_url, stack.admin_api_key)
            runs = []
            for role, key in keys.items():
                # The other roles reach fewer operations (403/404 answers): fewer examples.
                examples = args.max_examples if role == "admin" else max(1, args.max_examples // 2)
                run = run_role(
                    stack.api_url,
                    role,
                    key,
                    phases=args.phases,
                    max_examples=examples,
                    work_dir=work_dir,
                )
                runs.append(run)
                print(f"[fuzz] {json.dumps(asdict(run))}", flush=True)
                if run.exit_code:
                    print((work_dir / f"{role}.log").read_text()[-20000:], flush=True)
    summary = {
        "cases": sum(r.cases for r in runs),
        "server_errors": sum(r.server_errors for r in runs),
        "failed_roles": [r.role for r in runs if r.exit_code],
        "seconds": round(sum(r.seconds for r in runs), 1),
        "max_examples": args.max_examples,
        "phases": args.phases,
        "seed": SEED,
        "runs": [asdict(r) for r in runs],
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[fuzz] SUMMARY {json.dumps({k: summary[k] for k in list(summary)[:5]})}", flush=True)
    return 1 if summary["failed_roles"] or summary["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
