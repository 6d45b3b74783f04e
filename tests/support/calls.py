"""Helpers for the call-workflow tests: funded accounts on the real ledger, an in-process billing
worker on its own task queue (so other tests' workers never pick up these calls), and the
`python -m worker` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowHandle

from adapters.email.sender import RecordingEmailSender
from db.async_pool import open_async_pool
from db.models import Account, LedgerTransaction
from db.session import run_in_transaction
from dev.procs import free_port
from domain.contracts import CALL_WORKFLOW, call_workflow_id
from ledger import accounts as ledger_accounts
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.support.stack import WorkerProcess
from worker.main import build_worker

T = TypeVar("T")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def start_call_workflow(
    client: Client, task_queue: str, call_id: str, account_id: str, channel: str, **options: Any
) -> WorkflowHandle[Any, Any]:
    """Start a call's workflow without the client's Update-with-Start, as an orchestrator of
    its own may (`options`: the start's search_attributes, memo, result_type…); the caller sends
    the `authorize` update."""
    return await client.start_workflow(
        CALL_WORKFLOW,
        {"call_id": call_id, "account_id": account_id, "channel": channel},
        id=call_workflow_id(call_id),
        task_queue=task_queue,
        **options,
    )


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
        account, _ = self.tx(
            lambda s: ledger_accounts.create_account(
                s, policy, name="Caller", email="c@example.com"
            )
        )
        if paid:
            self.tx(
                lambda s: ledger_accounts.top_up(
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
    """An in-process worker with everything registered, on a fresh task queue, with its own
    async pool for calls' ledger transactions, as `python -m worker` runs."""
    queue = task_queue or uid("billing")
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    pool = await open_async_pool(url, 4, name="test-worker-calls")
    worker = build_worker(
        client,
        factory,
        policy or LedgerPolicy(),
        task_queue=queue,
        email_sender=RecordingEmailSender(),  # never a real email from here
        ledger_pool=pool,
    )
    try:
        async with worker:
            yield BillingClient(client, task_queue=queue)
    finally:
        await pool.close()


@contextlib.contextmanager
def worker_subprocess(database_url: str, address: str, task_queue: str) -> Iterator[WorkerProcess]:
    """`python -m worker` as the stack runs it, on `task_queue`, with its metrics on a free port;
    killable (`.kill()`)."""
    worker = WorkerProcess(
        database_url, address, env={"TASK_QUEUE": task_queue}, metrics_port=free_port()
    )
    with worker:
        yield worker
