"""The real billing stack for tests and benchmarks: the API under uvicorn on a free port and the
billing worker, against a given PostgreSQL database and Temporal server.

Nothing here uses fixed ports: uvicorn gets a socket bound to port 0.

In pytest (see tests/api/conftest.py)::

    @pytest.fixture(scope="session")
    def stack(database_url, workflow_env):
        with start_stack(database_url, temporal_address(workflow_env)) as running:
            yield running

    def test_something(stack):
        with stack.client(stack.admin_key) as http:
            http.post("/v1/accounts", json={...})

Pieces can be used alone:
- `ApiServer(settings)`: `api.main.create_app(settings)` in a uvicorn thread (migrations run on
  startup), `.base_url`, and its internal Prometheus endpoint `.metrics_url` (a free port
  unless the settings name one; 0 turns it off).
- `WorkerProcess(database_url, temporal_address)`: `python -m worker` as a subprocess
  (`dev.procs.ChildProcess`; its log in a temporary file, `.log_text()`), stopped with SIGTERM
  (SIGKILL after 10 s) or killed (`.kill()`).
- `start_stack(...)`: both, plus a random `ADMIN_API_KEY`; yields a `RunningStack`. A second
  stack on another database but the same Temporal server needs its own `task_queue=`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from core.config import Settings
from dev.procs import ChildProcess, free_port, python_command
from domain.contracts import TASK_QUEUE

ROOT = Path(__file__).resolve().parents[2]


def temporal_address(workflow_env: Any) -> str:
    """host:port of a `temporalio.testing.WorkflowEnvironment` (or a Client)."""
    client = getattr(workflow_env, "client", workflow_env)
    return str(client.service_client.config.target_host)


class ApiServer:
    """`api.main.create_app(settings)` served by uvicorn in a daemon thread on a free port."""

    def __init__(self, settings: Settings, *, startup_timeout: float = 60.0) -> None:
        from api.main import create_app

        if "api_metrics_port" not in settings.model_fields_set:
            settings = settings.model_copy(update={"api_metrics_port": free_port()})
        self.settings = settings
        self.app = create_app(settings)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True, name="api"
        )
        self.startup_timeout = startup_timeout

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_metrics_port}/metrics"

    def start(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError("the API server did not start in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_available() -> bool:
    return importlib.util.find_spec("worker.__main__") is not None


class WorkerProcess:
    """`python -m worker` against the given database and Temporal server. `metrics_port` 0
    (the default) turns the worker's metrics off: several stacks may run at once."""

    def __init__(
        self,
        database_url: str,
        temporal_address: str,
        *,
        env: Mapping[str, str] | None = None,
        metrics_port: int = 0,
    ) -> None:
        self.metrics_port = metrics_port
        handle, log_path = tempfile.mkstemp(prefix="billing-worker-", suffix=".log")
        os.close(handle)
        self.child = ChildProcess(
            "worker",
            python_command("worker"),
            log_path=log_path,
            env={
                "DATABASE_URL": database_url,
                "TEMPORAL_ADDRESS": temporal_address,
                "PYTHONPATH": str(ROOT),
                "WORKER_METRICS_PORT": str(metrics_port),
                **(env or {}),
            },
            cwd=ROOT,
        )

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.child.process

    def start(self) -> WorkerProcess:
        if not worker_available():
            raise RuntimeError("worker/__main__.py does not exist yet: no billing worker")
        self.child.start()
        time.sleep(0.5)
        if not self.child.alive():
            raise RuntimeError(f"the worker exited at once:\n{self.log_text()}")
        return self

    def log_text(self) -> str:
        return self.child.tail(None)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.child.kill()

    def stop(self) -> None:
        self.child.stop()
        if self.child.log_path is not None:
            with contextlib.suppress(OSError):
                self.child.log_path.unlink()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class RunningStack:
    base_url: str
    admin_key: str
    database_url: str
    temporal_address: str
    api: ApiServer
    worker: WorkerProcess | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on the API; `key` becomes `Authorization: Bearer <key>`."""
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(
            base_url=self.base_url, headers=headers, timeout=kwargs.pop("timeout", 30.0), **kwargs
        )


@contextlib.contextmanager
def start_stack(
    database_url: str,
    temporal_address: str,
    *,
    with_worker: bool = True,
    admin_key: str | None = None,
    settings: Mapping[str, Any] | None = None,
    worker_env: Mapping[str, str] | None = None,
    task_queue: str = TASK_QUEUE,
) -> Iterator[RunningStack]:
    """Start the API (and the worker) and yield a `RunningStack`; stop them on exit.

    Stacks on another database but the same Temporal server must use their own `task_queue`,
    or one stack's worker would run the other's workflows against the wrong database."""
    admin_key = admin_key or "osk_admin_" + secrets.token_urlsafe(24)
    api_settings = Settings(
        database_url=database_url,
        temporal_address=temporal_address,
        admin_api_key=admin_key,
        task_queue=task_queue,
        **dict(settings or {}),
    )
    worker: WorkerProcess | None = None
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(ApiServer(api_settings))
        if with_worker:
            env = {"ADMIN_API_KEY": admin_key, "TASK_QUEUE": task_queue, **(worker_env or {})}
            worker = stack.enter_context(WorkerProcess(database_url, temporal_address, env=env))
        yield RunningStack(
            base_url=api.base_url,
            admin_key=admin_key,
            database_url=database_url,
            temporal_address=temporal_address,
            api=api,
            worker=worker,
        )
