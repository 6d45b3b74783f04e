"""`make run` on a clean checkout, as the README's quick start says: a fresh `git clone` (only
committed files), no venv, DATABASE_URL and TEMPORAL_ADDRESS unset (embedded PostgreSQL and the
Temporal dev server), ports moved to free ones through the environment, DEMO_DURATION so the demo
stops itself and the stack shuts down. While it runs, the dashboard, API docs, Temporal UI and
both metrics endpoints must answer; at the end calls must have been billed, the trial account
refused, every process stopped and every log line JSON with call_id/account_id.

Slow (it creates a venv and installs the project from the package index, ~2-3 minutes, then runs
the stack for ~1 minute); skip it with `-m "not slow"`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dev.procs import free_ports, port_in_use

ROOT = Path(__file__).resolve().parents[2]
DEMO_DURATION = 25
TOTAL_TIMEOUT = 660

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TOTAL_TIMEOUT + 60)]


def _get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def _wait_get(url: str, timeout: float = 30) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    status, body = _get(url)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, body = _get(url)
    return status, body


def _processes_under(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _clean_env(ports: dict[str, int], base_python: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "VIRTUAL_ENV",
            "DATABASE_URL",
            "BILLING_TEST_DATABASE_URL",
            "TEMPORAL_ADDRESS",
            "ADMIN_API_KEY",
            "SENDGRID_API_KEY",
            "SENDGRID_HOST",
            "RUN_DIR",
            "PYTHONPATH",
            "MAKEFLAGS",
            "MFLAGS",
            "MAKELEVEL",
            "PYTEST_ADDOPTS",
            "PYTEST_CURRENT_TEST",
        }
    }
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update({name: str(port) for name, port in ports.items()})
    env["PYTHON"] = base_python
    env["DEMO_DURATION"] = str(DEMO_DURATION)
    env["DEMO_RATE"] = "2"
    return env


def test_make_run_on_a_clean_checkout(tmp_path: Path) -> None:
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.fail("make and git are needed for the quick start")
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:sh|bash)?\n(.*?)```", readme, re.S)
    assert first_block and "make run" in first_block.group(1), "README quick start is `make run`"

    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True, timeout=60)
    assert not (checkout / ".venv").exists() and not (checkout / ".run").exists()

    names = ["API_PORT", "TEMPORAL_PORT", "TEMPORAL_UI_PORT", "WORKER_METRICS_PORT"]
    names += ["API_METRICS_PORT", "EMAIL_CAPTURE_PORT"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    base_python = getattr(sys, "_base_executable", None) or shutil.which("python3") or "python3"
    env = _clean_env(ports, base_python)

    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "run"],
        cwd=checkout,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    banner = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Press Ctrl-C to stop." in line:
                banner.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    checks: dict[str, tuple[int, str]] = {}
    try:
        while not banner.wait(1):
            assert process.poll() is None, "make run exited early:\n" + "".join(output[-60:])
            assert time.monotonic() - started < TOTAL_TIMEOUT, "no banner:\n" + "".join(output)
        text = "".join(output)
        dashboard = re.search(r"Dashboard\s+(http://\S+/billing)", text)
        docs = re.search(r"API docs\s+(http://\S+)", text)
        temporal_ui = re.search(r"Temporal UI\s+(http://\S+)", text)
        assert dashboard and docs and temporal_ui, text
        api = f"http://127.0.0.1:{ports['API_PORT']}"
        assert dashboard.group(1) == f"{api}/billing"
        checks["dashboard"] = _wait_get(dashboard.group(1))
        checks["docs"] = _wait_get(docs.group(1))
        checks["temporal_ui"] = _wait_get(temporal_ui.group(1))
        # Metrics are on the API's internal port, not on the public one.
        checks["api_metrics"] = _wait_get(f"http://127.0.0.1:{ports['API_METRICS_PORT']}/metrics")
        public_metrics = _get(f"{api}/metrics")
        checks["worker_metrics"] = _wait_get(
            f"http://127.0.0.1:{ports['WORKER_METRICS_PORT']}/metrics"
        )
        remaining = TOTAL_TIMEOUT - (time.monotonic() - started)
        returncode = process.wait(timeout=max(remaining, 10))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        reader.join(10)
    text = "".join(output)
    tail = text[-6000:]

    assert returncode == 0, tail
    assert public_metrics[0] == 404, f"/metrics is public\n{tail}"
    for name, (status, _body) in checks.items():
        assert status == 200, f"{name} answered {status}\n{tail}"
    assert "<html" in checks["dashboard"][1].lower()
    assert "temporal_" in checks["worker_metrics"][1], "no Temporal SDK metrics from the worker"
    assert "temporal_request" in checks["api_metrics"][1], "no Temporal SDK metrics from the API"
    assert "billing_http_requests_total" in checks["api_metrics"][1]

    summary_line = next(line for line in output if line.startswith("DEMO SUMMARY "))
    summary = json.loads(summary_line[len("DEMO SUMMARY ") :])
    assert summary["calls_billed"] > 0, summary
    assert summary["charged_paisa"] > 0, summary
    assert summary["errors"] == 0, summary
    assert summary["refusal_reasons"].get("insufficient_balance", 0) >= 1, summary
    assert summary["low_account"]["refused"] is True
    assert summary["refund"]["status"] == "completed", summary
    assert summary["coupon"]["bonus_paisa"] == 10_000
    assert len(set(summary["channels"])) >= 3 and len(set(summary["outcomes"])) >= 3, summary
    for balance in summary["balances"]:
        assert balance["reserved_paisa"] == 0, balance  # every hold released after the calls
        assert balance["available_paisa"] == balance["paid_paisa"] + balance["promo_paisa"]
    assert re.search(r"calls started \d+ · billed \d+ .* charged ₹[\d,]+\.\d\d", text)

    # Stopped cleanly: every process and port it used is gone, the embedded PostgreSQL too.
    assert "[stack] stopped" in text
    time.sleep(1)
    assert _processes_under(checkout) == []
    for name, port in ports.items():
        assert not port_in_use(port), f"{name} {port} still bound"
    assert not (checkout / ".run" / "pgdata" / "postmaster.pid").exists()

    # Structured logs: every line of the worker and API logs is JSON with both ids.
    # The worker's lines about a call name it (activity interceptor); the API's access lines
    # name the account in the path (LogContextMiddleware).
    for name, key in (("worker", "call_id"), ("api", "account_id")):
        lines = (checkout / ".run" / "logs" / f"{name}.log").read_text().splitlines()
        assert lines, f"{name}.log is empty"
        entries = [json.loads(line) for line in lines]
        for entry in entries:
            assert "call_id" in entry and "account_id" in entry, entry
        assert any(entry[key] for entry in entries), f"no {name}.log line carries a {key}"
