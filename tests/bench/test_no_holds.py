"""The benchmark's billed-without-running-holds variant (bench.no_holds) against the real
workflow, both on in-process workers with the real activities, ledger and Temporal: the variant
must really skip the usage checkpoints (else the bench's running-holds cost compares billed with
itself), and still charge exactly what the billed workflow charges."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from adapters.email.sender import RecordingEmailSender
from bench.no_holds import build_no_holds_worker
from db.models import Account, CallUsageEvent
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.support.calls import Ledger, running_worker, uid


def usage_rows(factory: sessionmaker[Session], call_id: str) -> int:
    with factory() as session:
        query = select(func.count()).select_from(CallUsageEvent)
        return int(session.scalar(query.where(CallUsageEvent.call_id == call_id)) or 0)


def usage(call_id: str) -> list[dict[str, object]]:
    return [
        {**event, "event_id": f"{call_id}-{event['event_id']}-{n}"}
        for n in range(5)
        for event in TYPICAL_PHONE_CALL_USAGE
    ]


async def test_without_running_holds_usage_is_priced_only_at_hangup(
    workflow_env: WorkflowEnvironment, session_factory: sessionmaker[Session]
) -> None:
    ledger = Ledger(session_factory, LedgerPolicy())
    client = workflow_env.client
    async with running_worker(client, session_factory) as billed:
        queue = uid("bench-no-holds")
        worker = build_no_holds_worker(
            client,
            session_factory,
            task_queue=queue,
            activities_task_queue=billed.task_queue,
            email_sender=RecordingEmailSender(),
        )
        async with worker:
            clients = {"with": billed, "without": BillingClient(client, task_queue=queue)}
            accounts = {kind: ledger.account(paid=100_000, promo=0) for kind in clients}
            calls = {kind: uid(f"call-{kind}") for kind in clients}
            holds = {}
            for kind, billing in clients.items():
                decision = await billing.authorize(calls[kind], accounts[kind], "phone")
                assert decision.authorized
                holds[kind] = decision.hold_paisa
            for kind, billing in clients.items():
                await billing.report_usage(calls[kind], {"events": usage(calls[kind])})

            def raised(account: Account) -> bool:
                return account.reserved_paisa > holds["with"]

            await ledger.wait_for(raised, accounts["with"], timeout=10)
            assert usage_rows(session_factory, calls["with"]) == 20
            await asyncio.sleep(1.5)  # past the time a checkpoint would be due, with margin
            assert ledger.balance(accounts["without"]).reserved_paisa == holds["without"] > 0
            assert usage_rows(session_factory, calls["without"]) == 0

            for kind, billing in clients.items():
                await billing.hangup(calls[kind], "completed")
            results = {kind: await billing.result(calls[kind]) for kind, billing in clients.items()}
    assert all(r.charged and r.usage_event_count == 20 for r in results.values())
    assert results["with"].breakdown.total_paisa == results["without"].breakdown.total_paisa > 0
    assert usage_rows(session_factory, calls["without"]) == 20  # priced by finalize
    for kind, account_id in accounts.items():
        account = ledger.balance(account_id)
        assert account.reserved_paisa == 0
        assert account.paid_paisa == 100_000 - results[kind].breakdown.total_paisa
