"""Shared by the email adapter, accounts, refunds and dev tests: the SendGrid capture server
(`dev.email_capture`) on a free port (the real `sendgrid` client talks HTTP to it) and a worker
on a private task queue running the account, refund and reconciler workflows with their real
activities. The harness's ledger operations hand a crossing to the account workflow after the
commit as the production callers do (`Harness.notify`); `commit_only=True` skips that, as a
caller that died right after its commit would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.accounts import AccountActivities
from activities.alerts import AlertPublisher
from activities.deps import WorkerDeps
from activities.orphaned_calls import OrphanedCallActivities
from activities.reconciler import ReconcilerActivities, ReconcilerLimits
from activities.refund_parts import RefundPartActivities
from activities.refunds import RefundActivities
from adapters.email.sender import SendGridEmailSender
from adapters.payments.gateway import SandboxPaymentGateway
from adapters.payments.refund_rails import SandboxRefundRails
from db.session import run_in_transaction
from dev.email_capture import CaptureServer
from domain.ledger_types import BalanceSnapshot
from ledger import accounts as ledger_accounts
from ledger import api_requests, balances
from ledger.policy import LedgerPolicy
from workflows.accounts import AccountWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.refunds import RefundWorkflow

T = TypeVar("T")


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def capture_server() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


def fail_next(server: CaptureServer, count: int, status: int = 503) -> None:
    """Through the server's HTTP control endpoint, like an operator would."""
    response = httpx.post(
        f"{server.url}/control/fail-next", json={"count": count, "status": status}
    )
    response.raise_for_status()


def messages_to(server: CaptureServer, address: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/messages", params={"to": address})
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class Harness:
    client: Client
    task_queue: str
    session_factory: sessionmaker[Session]
    capture: CaptureServer
    gateway: SandboxPaymentGateway
    policy: LedgerPolicy
    deps: WorkerDeps
    publisher: AlertPublisher

    def tx(self, work: Callable[[Session], T]) -> T:
        return run_in_transaction(self.session_factory, work)

    async def notify(self, snapshot: BalanceSnapshot) -> BalanceSnapshot:
        """What a caller does right after committing a balance change."""
        await self.publisher.after_commit(snapshot)
        return snapshot

    def reconciler(self, **limits: Any) -> ReconcilerActivities:
        """The reconciler's steps with these limits (called directly, outside a worker)."""
        return ReconcilerActivities(self.deps, ReconcilerLimits(**limits))

    async def new_account(self, *, paid_paisa: int = 0) -> tuple[str, str]:
        email = f"{uid('cust')}@example.com"
        account, _ = self.tx(
            lambda s: ledger_accounts.create_account(s, self.policy, name="Asha Rao", email=email)
        )
        if paid_paisa:
            await self.top_up(account.id, paid_paisa)
        return account.id, email

    async def top_up(self, account_id: str, amount_paisa: int) -> BalanceSnapshot:
        _, snap = self.tx(
            lambda s: ledger_accounts.top_up(
                s, account_id=account_id, amount_paisa=amount_paisa, payment_reference=uid("pay")
            )
        )
        return await self.notify(snap)

    async def charge(
        self, account_id: str, input_tokens: int, *, commit_only: bool = False
    ) -> BalanceSnapshot:
        """An osmAPI charge: gpt-4o-mini input tokens at ₹0.0000125 + 30% margin."""
        _, snap = self.tx(
            lambda s: api_requests.charge_api_usage(
                s,
                request_id=uid("req"),
                account_id=account_id,
                sku="openai/gpt-4o-mini",
                input_tokens=input_tokens,
                output_tokens=0,
            )
        )
        return snap if commit_only else await self.notify(snap)

    def balance(self, account_id: str) -> BalanceSnapshot:
        return self.tx(lambda s: balances.balance_summary(s, account_id)).balance


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def harness(
    workflow_env: WorkflowEnvironment,
    session_factory: sessionmaker[Session],
    capture_server: CaptureServer,
) -> AsyncIterator[Harness]:
    client = workflow_env.client
    task_queue = uid("billing-accounts")
    sender = SendGridEmailSender("SG.test-key", capture_server.url, backoff_seconds=0.05)
    gateway = SandboxPaymentGateway()
    policy = LedgerPolicy()
    deps = WorkerDeps(
        session_factory=session_factory,
        policy=policy,
        client=client,
        task_queue=task_queue,
        email_sender=sender,
        payment_gateway=gateway,
        email_from="billing@osmtalk.example",
        dashboard_url="http://127.0.0.1:8000",
    )
    accounts = AccountActivities(session_factory, sender)
    refunds = RefundActivities(session_factory, client, gateway, sender, task_queue=task_queue)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[AccountWorkflow, RefundWorkflow, ReconcilerWorkflow],
        activities=[
            accounts.send_low_balance_alert,
            *refunds.activities(),
            *RefundPartActivities(
                session_factory, client, SandboxRefundRails(gateway), task_queue=task_queue
            ).activities(),
            *ReconcilerActivities(deps).activities(),
            *OrphanedCallActivities(deps).activities(),
        ],
    ):
        yield Harness(
            client=client,
            task_queue=task_queue,
            session_factory=session_factory,
            capture=capture_server,
            gateway=gateway,
            policy=policy,
            deps=deps,
            publisher=AlertPublisher(session_factory, client, task_queue=task_queue),
        )
