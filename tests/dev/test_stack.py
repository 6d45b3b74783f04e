"""The stack supervisor (`python -m dev.stack`, behind `make serve`) against the test run's
PostgreSQL and Temporal dev server, in a namespace of its own so that its worker never takes
tasks of other tests: Ctrl-C stops every child in reverse order and exits 0; a child that dies
makes it stop the rest and exit non-zero with the end of that child's log."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client

from dev.procs import free_ports, port_in_use
from dev.temporal import register_search_attributes

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


async def _namespace(client: Client) -> str:
    name = f"stack-test-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name,
            workflow_execution_retention_period=_duration(timedelta(days=1)),
        )
    )
    for _ in range(50):
        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=name)
            )
            try:
                await register_search_attributes(client, name)  # AccountId, CallChannel, ...
            except Exception as exc:
                if "already" not in str(exc).lower():
                    raise
            return name
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError(f"namespace {name} never appeared")


def _duration(delta: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(delta)
    return duration


class Running:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if self.process.poll() is not None:
                time.sleep(0.5)
                if needle in self.text:
                    return
                raise AssertionError(f"exited before {needle!r}:\n{self.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} after {timeout}s:\n{self.text}")
            time.sleep(0.2)


async def _start(
    database_url: str, client: Client, tmp_path: Path, **extra: str
) -> tuple[Running, dict[str, int], str]:
    namespace = await _namespace(client)
    names = [
        "API_PORT",
        "API_METRICS_PORT",
        "WORKER_METRICS_PORT",
        "EMAIL_CAPTURE_PORT",
        "RAZORPAY_STANDIN_PORT",
    ]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    unset = ("ADMIN_API_KEY", "SENDGRID_API_KEY", "RAZORPAY_KEY_ID", "RAZORPAY_API_URL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=namespace,
        RUN_DIR=str(tmp_path / "run"),
        **extra,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "dev.stack"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return Running(process), ports, namespace


def _cleanup(running: Running) -> None:
    if running.process.poll() is None:
        os.killpg(running.process.pid, signal.SIGKILL)
        running.process.wait(10)


async def test_ctrl_c_stops_every_child_in_reverse_order(
    database_url: str, client: Client, tmp_path: Path
) -> None:
    running, ports, namespace = await _start(database_url, client, tmp_path)
    try:
        await asyncio.to_thread(running.wait_for, "Press Ctrl-C to stop.")
        text = running.text
        key = re.search(r"Admin API key\s+(\S+)\s+\(generated", text)
        assert key, text
        api = f"http://127.0.0.1:{ports['API_PORT']}"
        with urllib.request.urlopen(f"{api}/healthz", timeout=5) as response:
            assert response.status == 200
        # The generated admin key is accepted by the API it started.
        request = urllib.request.Request(
            f"{api}/v1/rate-cards/current", headers={"Authorization": f"Bearer {key.group(1)}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        assert port_in_use(ports["WORKER_METRICS_PORT"])
        assert port_in_use(ports["EMAIL_CAPTURE_PORT"])
        # The API's metrics are on their own port (printed), not on the public one.
        api_metrics = f"http://127.0.0.1:{ports['API_METRICS_PORT']}/metrics"
        assert f"API {api_metrics}" in text
        with urllib.request.urlopen(api_metrics, timeout=5) as response:
            assert b"billing_http_requests_total" in response.read()
        standin = f"http://127.0.0.1:{ports['RAZORPAY_STANDIN_PORT']}"
        assert f"Razorpay       {standin} (local stand-in)" in text

        # The traffic generator alone, against this running stack.
        demo = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "dev.demo",
                "--api-url",
                api,
                "--admin-key",
                key.group(1),
                "--temporal-address",
                client.service_client.config.target_host,
                "--temporal-namespace",
                namespace,
                "--rate",
                "3",
                "--duration",
                "4",
                "--accounts",
                "1",
                "--no-low-account",
                "--summary-interval",
                "2",
            ],
            cwd=ROOT,
            env={**os.environ, "RAZORPAY_API_URL": standin},
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        summary = json.loads(demo.stdout.split("DEMO SUMMARY ", 1)[1])
        assert summary["calls_billed"] > 0 and summary["errors"] == 0, summary
        # A customer bought credits through a checkout paid at the stand-in.
        bought = summary["checkout"]
        assert bought["status"] == "paid", bought
        assert bought["paid_after_paisa"] - bought["paid_before_paisa"] == bought["amount_paisa"]
        assert "low_account" not in summary
        assert re.search(r"\[demo\]\s+\d+s  calls started \d+", demo.stdout)

        running.process.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(running.process.wait, 60)
        running.reader.join(5)
    finally:
        _cleanup(running)
    text = running.text
    assert code == 0, text
    order = [m.group(1) for m in re.finditer(r"\[stack\] stopping (\S+)", text)]
    assert order == ["api", "worker", "razorpay-standin", "email-capture"], text
    assert text.rstrip().endswith("[stack] stopped")
    for name, port in ports.items():
        assert not port_in_use(port), f"{name} still listening"
    log_dir = tmp_path / "run" / "logs"
    expected = {"api.log", "worker.log", "email-capture.log", "razorpay-standin.log"}
    assert {p.name for p in log_dir.iterdir()} >= expected


async def test_a_child_that_dies_stops_the_stack_with_an_error(
    database_url: str, client: Client, tmp_path: Path
) -> None:
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        running, ports, _ = await _start(database_url, client, tmp_path, API_PORT=str(taken))
        try:
            code = await asyncio.to_thread(running.process.wait, 120)
            running.reader.join(5)
        finally:
            _cleanup(running)
    finally:
        blocker.close()
    text = running.text
    assert code == 1, text
    assert "ERROR: api exited with code" in text, text
    assert "--- last lines of api ---" in text
    assert "[stack] stopping worker" in text and text.rstrip().endswith("[stack] stopped")
    assert not port_in_use(ports["WORKER_METRICS_PORT"])
