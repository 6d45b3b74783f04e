"""Helpers for the call-workflow tests: funded accounts on the real ledger, an in-process billing
worker on its own task queue (so other tests' workers never pick up these calls), and the
`python -m worker` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from db.models import Account, LedgerTransaction
from db.session import run_in_transaction
from emailing.sender import RecordingEmailSender
from ledger import service
from ledger.service import LedgerPolicy
from orchestrator_client import BillingClient
from tests.support.ports import free_port
from worker.main import build_worker

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def temporal_address(client: Client) -> str:
    return client.service_client.config.target_host


class Ledger:
    """Committed ledger transactions and read-backs for assertions."""

    def __init__(self, factory: sessionmaker[Session], policy: LedgerPolicy) -> None:
        self.factory = factory
        self.policy = policy

    def tx(self, work: Callable[[Session], T]) -> T:
        return run_in_transaction(self.factory, work)

    def account(self, *, paid: int = 0, promo: int = 5000) -> str:
        policy = LedgerPolicy(
            min_balance_paisa=self.policy.min_balance_paisa, welcome_promo_paisa=promo
        )
        account = self.tx(
            lambda s: service.create_account(s, policy, name="Caller", email="c@example.com")
        )
        if paid:
            self.tx(
                lambda s: service.top_up(
                    s, account_id=account.id, amount_paisa=paid, payment_reference=uid("pay")
                )
            )
        return account.id

    def balance(self, account_id: str) -> Account:
        with self.factory() as session:
            account = session.get(Account, account_id)
            assert account is not None
            return account

    def transactions(self, account_id: str, kind: str | None = None) -> list[LedgerTransaction]:
        with self.factory() as session:
            query = select(LedgerTransaction).where(LedgerTransaction.account_id == account_id)
            if kind is not None:
                query = query.where(LedgerTransaction.kind == kind)
            return list(session.scalars(query.order_by(LedgerTransaction.id)))

    async def wait_for(
        self, predicate: Callable[[Account], bool], account_id: str, timeout: float = 10.0
    ) -> float:
        """Poll the committed balance until `predicate` holds; returns the seconds it took."""
        started = time.monotonic()
        while True:
            if predicate(self.balance(account_id)):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"balance of {account_id} never matched")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    factory: sessionmaker[Session],
    policy: LedgerPolicy | None = None,
    task_queue: str | None = None,
) -> AsyncIterator[BillingClient]:
    """An in-process worker with everything registered, on a fresh task queue."""
    queue = task_queue or uid("billing")
    worker = build_worker(
        client,
        factory,
        policy or LedgerPolicy(),
        task_queue=queue,
        email_sender=RecordingEmailSender(),  # never a real email from here
    )
    async with worker:
        yield BillingClient(client, task_queue=queue)


class WorkerSubprocess:
    """`python -m worker` as the stack runs it, killable."""

    def __init__(self, database_url: str, address: str, task_queue: str) -> None:
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": address,
            "TASK_QUEUE": task_queue,
            "WORKER_METRICS_PORT": str(self.metrics_port),
            "PYTHONPATH": str(ROOT),
        }
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="call-worker-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerSubprocess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def log_text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=timeout)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


@contextlib.contextmanager
def worker_subprocess(database_url: str, address: str, task_queue: str) -> Iterator[Any]:
    worker = WorkerSubprocess(database_url, address, task_queue).start()
    try:
        yield worker
    finally:
        worker.cleanup()
