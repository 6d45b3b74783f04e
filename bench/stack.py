"""A whole private billing stack for the benchmark and the chaos tests, every piece a process we
can kill: PostgreSQL, the Temporal dev server, the billing worker, the API, the baseline worker,
the billed-without-running-holds worker (bench.no_holds).
All on 127.0.0.1, free ports, one temporary directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from dev.email_capture import CaptureServer
from dev.postgres import PostgresProcess
from dev.procs import ChildProcess, free_port, python_command, wait_for_http
from dev.temporal import TemporalDevServer

REPO_ROOT = Path(__file__).resolve().parent.parent


class Stack:
    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        temporal_db: str = "file",
        with_api: bool = True,
        with_baseline: bool = False,
        with_no_holds: bool = False,
        database_url: str | None = None,
        workers: int = 1,
        api_workers: int = 1,
    ) -> None:
        self.dir = Path(work_dir).absolute()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.temporal_db = temporal_db
        self.with_api = with_api
        self.with_baseline = with_baseline
        self.with_no_holds = with_no_holds
        self.external_database_url = database_url
        self.postgres: PostgresProcess | None = None
        self.temporal = TemporalDevServer(
            self.dir / "temporal.log",
            db_filename=str(self.dir / "temporal.db") if temporal_db == "file" else None,
        )
        self.database_url = ""
        self.admin_api_key = "adm_" + secrets.token_urlsafe(24)
        # One for every API process of this stack (a random one each would not share sessions).
        self.session_secret = secrets.token_urlsafe(32)
        self.api_port = free_port()
        self.worker: ChildProcess | None = None  # the most recently started one
        self.workers: list[ChildProcess] = []
        self.worker_count = workers
        self.api_workers = api_workers
        self.api: ChildProcess | None = None
        self.baseline: ChildProcess | None = None
        self.no_holds: ChildProcess | None = None
        self._worker_generation = 0
        self._capture: CaptureServer | None = None

    @property
    def capture(self) -> CaptureServer:
        """The SendGrid capture server the worker and the API send email to."""
        assert self._capture is not None, "the stack is not started"
        return self._capture

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _env(self) -> dict[str, str]:
        existing = os.environ.get("PYTHONPATH")
        return {
            "DATABASE_URL": self.database_url,
            "TEMPORAL_ADDRESS": self.temporal.address,
            "ADMIN_API_KEY": self.admin_api_key,
            "BILLING_ENV": "development",  # dev tooling: generated secrets, no checks
            "SESSION_SECRET": self.session_secret,
            "SENDGRID_HOST": self._capture_url,
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{existing}" if existing else str(REPO_ROOT),
            "LOG_LEVEL": "WARNING",
            "WORKFLOW_SANDBOX": "0",  # the production setting (the test suite runs sandboxed)
        }

    def start(self) -> None:
        from db.migrate import upgrade
        from dev.postgres import create_scratch_database

        capture = CaptureServer(port=0)
        capture.start()
        self._capture = capture
        self._capture_url = capture.url
        if self.external_database_url:
            server_url = self.external_database_url
        else:
            self.postgres = PostgresProcess(self.dir / "pgdata")
            self.postgres.start()
            server_url = self.postgres.url
        self.database_url = create_scratch_database(server_url, prefix="bench")
        upgrade(self.database_url)
        self.temporal.start()
        for _ in range(self.worker_count):
            self.start_worker()
        if self.with_baseline:
            self.baseline = ChildProcess(
                "baseline",
                python_command("bench.baseline", "--address", self.temporal.address),
                env=self._env(),
                log_path=self.dir / "baseline.log",
                cwd=REPO_ROOT,
                stop_timeout=15,
            )
            self.baseline.start()
        if self.with_no_holds:
            self.no_holds = ChildProcess(
                "no-holds",
                python_command("bench.no_holds"),
                env={**self._env(), "WORKER_METRICS_PORT": "0"},
                log_path=self.dir / "no-holds.log",
                cwd=REPO_ROOT,
                stop_timeout=15,
            )
            self.no_holds.start()
        if self.with_api:
            self.api = ChildProcess(
                "api",
                python_command(
                    "uvicorn",
                    "api.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.api_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "--workers",
                    str(self.api_workers),
                ),
                env=self._env(),
                log_path=self.dir / "api.log",
                cwd=REPO_ROOT,
                stop_timeout=15,
            )
            self.api.start()
            wait_for_http(f"{self.api_url}/healthz")

    def start_worker(self) -> None:
        self._worker_generation += 1
        self.worker = ChildProcess(
            f"worker-{self._worker_generation}",
            python_command("worker"),
            env={**self._env(), "WORKER_METRICS_PORT": str(free_port())},
            log_path=self.dir / f"worker-{self._worker_generation}.log",
            cwd=REPO_ROOT,
            stop_timeout=15,
        )
        self.worker.start()
        self.workers.append(self.worker)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()

    def logs(self, lines: int = 30) -> str:
        parts = []
        for proc in (self.worker, self.api, self.baseline, self.no_holds):
            if proc is not None:
                parts.append(f"--- {proc.name} ---\n{proc.tail(lines)}")
        parts.append(f"--- temporal ---\n{self.temporal.tail(lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in (self.api, self.baseline, self.no_holds, *self.workers):
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()
        with contextlib.suppress(Exception):
            self.temporal.stop()
        if self.postgres is not None:
            self.postgres.close()
        if self._capture is not None:
            with contextlib.suppress(Exception):
                self._capture.stop()

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
