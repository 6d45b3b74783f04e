"""Chaos, wider (issue 12 item 7): the API in the loop, SIGKILL of the Temporal dev server,
refunds and low-balance alerts under faults, Temporal down while refunds are requested, and a
call workflow terminated mid-call.

One private stack with the API (bench.stack; the worker runs unsandboxed, the production
setting). Every scenario ends with ledger.invariants.check_ledger and an independent
expectation (calls priced by the generator with domain.rating, refunds and top-ups summed from
what the test did) agreeing to the paisa.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.load import CallPlan, CallSample, drive_call, make_plan, seed_accounts
from bench.stack import Stack
from db.session import get_engine, get_sessionmaker, run_in_transaction
from domain.contracts import RECONCILER_SCHEDULE_ID, RECONCILER_STEPS, call_workflow_id
from ledger.accounts import set_alert_threshold
from ledger.invariants import check_ledger
from ledger.policy import LedgerPolicy
from orchestrator_client import BillingClient
from tests.chaos.http_driver import (
    DEADLINE,
    HTTP_TIMEOUT,
    drive_call_http,
    poll_until,
    post_until_done,
)
from tests.chaos.test_chaos import verify

TOP_UP = 100_000  # ₹1,000
THRESHOLD = 60_000
REFUND = 50_000  # takes every account below THRESHOLD: one crossing each
FAILED_SENDS = 8  # SendGrid answers the first sends of the 5xx scenario with 503


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="billing-chaos-wide-") as work_dir:
        stack = Stack(work_dir, temporal_db="file", with_api=True, with_baseline=False)
        with stack:
            yield stack
        get_engine(stack.database_url).dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def billing(stack: Stack) -> AsyncIterator[BillingClient]:
    yield await BillingClient.connect(stack.temporal.address)


@pytest_asyncio.fixture(loop_scope="session")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers=headers, timeout=HTTP_TIMEOUT
    ) as client:
        yield client


# --- 1. SIGKILL of the Temporal dev server, the API in the loop ------------------------------

CALLS = 60  # half over HTTP, half with the Python client
ARRIVAL_SECONDS = 5.0
FAULT_AT_SECONDS = 2.0


@pytest.mark.timeout(300)
async def test_sigkill_temporal_with_the_api_in_the_loop(
    stack: Stack, billing: BillingClient, http: httpx.AsyncClient
) -> None:
    factory = get_sessionmaker(stack.database_url)
    accounts = await asyncio.to_thread(
        seed_accounts, factory, 10, top_up_paisa=5_000_000, prefix="chaos-kill-temporal"
    )
    rng = random.Random("chaos-kill-temporal")
    plans = [make_plan(f"chaos-kt-{i:04d}", accounts[i % len(accounts)], rng) for i in range(CALLS)]
    pauses = [rng.uniform(0.3, 2.0) for _ in plans]

    async def one(index: int, plan: CallPlan) -> CallSample:
        await asyncio.sleep(index * ARRIVAL_SECONDS / CALLS)
        if index % 2:
            return await drive_call_http(http, plan, pauses[index])
        return await drive_call(
            billing, plan, batched=False, usage_signals=2, talk_pause=pauses[index],
            timeout=DEADLINE,
        )  # fmt: skip

    window: list[float] = []

    async def strike() -> None:
        await asyncio.sleep(FAULT_AT_SECONDS)
        window.append(time.monotonic())
        await asyncio.to_thread(stack.temporal.restart, 2.0, kill=True)
        window.append(time.monotonic())

    started = time.monotonic()
    fault = asyncio.create_task(strike())
    samples = await asyncio.gather(*(one(i, p) for i, p in enumerate(plans)))
    await fault
    elapsed = time.monotonic() - started
    spanning = [s for s in samples if s.finished_at - (s.total_s or 0) < window[0] < s.finished_at]
    print(
        f"\nsigkill-temporal: {CALLS} calls ({CALLS // 2} over HTTP) in {elapsed:.1f}s; fault "
        f"{window[1] - window[0]:.1f}s, {len(spanning)} in flight; "
        f"{sum(s.retries for s in samples)} client retries"
    )
    assert len(spanning) >= 10, f"only {len(spanning)} calls were in flight during the fault"
    await asyncio.to_thread(verify, stack, plans, samples, accounts)


# --- 2. refunds and low-balance alerts under faults -------------------------------------------


def seed_refund_accounts(stack: Stack, prefix: str, count: int) -> list[str]:
    factory = get_sessionmaker(stack.database_url)
    accounts = seed_accounts(factory, count, top_up_paisa=TOP_UP, prefix=prefix)
    for account_id in accounts:

        def alert_below(session: Session, account_id: str = account_id) -> None:
            set_alert_threshold(session, account_id, THRESHOLD)

        run_in_transaction(factory, alert_below)
    return accounts


async def request_refund(
    http: httpx.AsyncClient, account_id: str, key: str, retries: list[int]
) -> dict[str, Any]:
    """POST the refund with its Idempotency-Key, again with the same key on 503/timeouts, then
    poll it until it is completed."""
    deadline = time.monotonic() + DEADLINE
    answer = await post_until_done(
        http,
        f"/v1/accounts/{account_id}/refunds",
        {"amount_paisa": REFUND},
        headers={"Idempotency-Key": key},
        deadline=deadline,
        counter=retries,
    )
    assert answer.status_code == 202, answer.text
    refund: dict[str, Any] = answer.json()

    async def completed() -> bool:
        nonlocal refund
        try:
            got = await http.get(f"/v1/refunds/{refund['id']}")
        except httpx.TransportError:
            return False
        refund = got.json() if got.status_code == 200 else refund
        return refund.get("status") in ("completed", "failed")

    await poll_until(completed, max(deadline - time.monotonic(), 1.0), f"refund {key}")
    assert refund["status"] == "completed", refund
    return refund


def verify_refunds(stack: Stack, accounts: list[str], keys_per_account: int = 1) -> None:
    """check_ledger finds nothing, and each account shows its top-up, welcome promo and exactly
    one refund debit per key (the test's own sums), nothing else."""
    factory = get_sessionmaker(stack.database_url)
    with factory() as session:
        violations = check_ledger(session, accounts)
        assert not violations, "\n".join(str(v) for v in violations[:20])
        rows = session.execute(
            text(
                "SELECT account_id, kind, amount_paisa FROM ledger_transactions "
                "WHERE account_id = ANY(:ids) ORDER BY id"
            ),
            {"ids": accounts},
        ).all()
        balances: dict[str, int] = dict(
            session.execute(
                text("SELECT id, paid_paisa + promo_paisa FROM accounts WHERE id = ANY(:ids)"),
                {"ids": accounts},
            ).all()
        )
    for account_id in accounts:
        kinds = sorted((r.kind, r.amount_paisa) for r in rows if r.account_id == account_id)
        refunds = [a for k, a in kinds if k.startswith("refund")]
        assert refunds == [-REFUND] * keys_per_account, (account_id, kinds)
        # seed_accounts' default policy (the stack's settings too) grants the welcome promo.
        expected = TOP_UP + LedgerPolicy().welcome_promo_paisa - REFUND * keys_per_account
        assert sum(a for _, a in kinds) == expected == balances[account_id], (account_id, kinds)


def low_balance_emails(stack: Stack, account_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in stack.capture.messages(to=f"{account_id}@bench.invalid")
        if str(m.get("dedupe_key") or "").startswith("low-balance:")
    ]


async def wait_for_alerts(stack: Stack, accounts: list[str], billing: BillingClient) -> None:
    """Poll until every account got its low-balance email; every 20 s trigger the reconciler
    (it re-delivers crossings left undelivered for a minute)."""
    deadline = time.monotonic() + 180
    next_trigger = time.monotonic() + 20
    while any(not low_balance_emails(stack, a) for a in accounts):
        assert time.monotonic() < deadline, "a low-balance alert was lost\n" + stack.logs()
        if time.monotonic() > next_trigger:
            next_trigger = time.monotonic() + 20
            await billing.client.get_schedule_handle(RECONCILER_SCHEDULE_ID).trigger()
        await asyncio.sleep(0.5)


@pytest.mark.timeout(300)
async def test_refunds_and_alerts_while_the_worker_is_killed(
    stack: Stack, billing: BillingClient, http: httpx.AsyncClient
) -> None:
    accounts = await asyncio.to_thread(seed_refund_accounts, stack, "chaos-refund-kill", 12)
    retries: list[int] = []
    keys = {a: f"refund-{a}-{uuid.uuid4().hex[:8]}" for a in accounts}

    killed_at: list[float] = []
    spans: list[tuple[float, float]] = []

    async def strike() -> None:
        await asyncio.sleep(0.3)  # the first refunds are being decided
        killed_at.append(time.monotonic())
        await asyncio.to_thread(stack.kill_worker)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stack.start_worker)
        killed_at.append(time.monotonic())  # [1]: the new worker is starting

    async def one(index: int, account_id: str) -> dict[str, Any]:
        await asyncio.sleep(index * 0.15)
        begun = time.monotonic()
        refund = await request_refund(http, account_id, keys[account_id], retries)
        spans.append((begun, time.monotonic()))
        return refund

    started = time.monotonic()
    fault = asyncio.create_task(strike())
    refunds = await asyncio.gather(*(one(i, a) for i, a in enumerate(accounts)))
    await fault
    # The same key again, after completion: the same refund, no second debit.
    again = [await request_refund(http, a, keys[a], retries) for a in accounts[:3]]
    assert [r["id"] for r in again] == [r["id"] for r in refunds[:3]]
    # The outage really struck refunds (asked before the new worker started, done after the kill).
    in_flight = sum(1 for begun, done in spans if begun < killed_at[1] and done > killed_at[0])
    assert in_flight >= 5, f"only {in_flight} refunds were in flight while no worker ran"
    await wait_for_alerts(stack, accounts, billing)
    print(
        f"\nrefunds-kill-worker: {in_flight} in flight across the kill; {len(accounts)} refunds + "
        f"{len(again)} repeats in "
        f"{time.monotonic() - started:.1f}s, {len(retries)} HTTP retries; low-balance emails: "
        f"{sum(len(low_balance_emails(stack, a)) for a in accounts)} for {len(accounts)} crossings"
    )
    await asyncio.to_thread(verify_refunds, stack, accounts)


@pytest.mark.timeout(300)
async def test_alerts_while_sendgrid_answers_5xx(
    stack: Stack, billing: BillingClient, http: httpx.AsyncClient
) -> None:
    """Nothing crashes, SendGrid fails the first sends: exactly one email per crossing."""
    accounts = await asyncio.to_thread(seed_refund_accounts, stack, "chaos-alert-5xx", 6)
    attempts_before = stack.capture.state.send_attempts
    async with httpx.AsyncClient(base_url=stack.capture.url, timeout=HTTP_TIMEOUT) as capture:
        armed = await capture.post(
            "/control/fail-next", json={"count": FAILED_SENDS, "status": 503}
        )
        assert armed.status_code == 200
    retries: list[int] = []
    await asyncio.gather(*(request_refund(http, a, f"r-{a}", retries) for a in accounts))
    await wait_for_alerts(stack, accounts, billing)

    async def all_delivered() -> bool:
        with get_sessionmaker(stack.database_url)() as session:
            left = session.execute(
                text(
                    "SELECT count(*) FROM alert_outbox WHERE account_id = ANY(:ids) "
                    "AND delivered_at IS NULL"
                ),
                {"ids": accounts},
            ).scalar_one()
        return int(left) == 0

    await poll_until(all_delivered, 120, "alert outbox delivered")
    counts = {a: len(low_balance_emails(stack, a)) for a in accounts}
    assert counts == dict.fromkeys(accounts, 1), counts
    # The failures really happened: every injected 503 was answered to a send.
    assert stack.capture.state.fail_next == []
    sent = len([m for a in accounts for m in stack.capture.messages(to=f"{a}@bench.invalid")])
    attempts = stack.capture.state.send_attempts - attempts_before
    print(f"\nalerts-sendgrid-5xx: {len(accounts)} crossings, {attempts} sends for {sent} emails")
    assert attempts >= sent + FAILED_SENDS
    await asyncio.to_thread(verify_refunds, stack, accounts)


# --- 3. Temporal down while refunds are requested ---------------------------------------------


@pytest.mark.timeout(300)
async def test_refund_while_temporal_is_down(
    stack: Stack, billing: BillingClient, http: httpx.AsyncClient
) -> None:
    accounts = await asyncio.to_thread(seed_refund_accounts, stack, "chaos-refund-down", 3)
    keys = {a: f"down-{a}" for a in accounts}
    await asyncio.to_thread(stack.temporal.kill)
    try:
        for account_id in accounts:
            answer = await http.post(
                f"/v1/accounts/{account_id}/refunds",
                json={"amount_paisa": REFUND},
                headers={"Idempotency-Key": keys[account_id]},
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "billing_unavailable"
        with get_sessionmaker(stack.database_url)() as session:
            debits = session.execute(
                text(
                    "SELECT count(*) FROM ledger_transactions WHERE account_id = ANY(:ids) "
                    "AND kind LIKE 'refund%'"
                ),
                {"ids": accounts},
            ).scalar_one()
        assert debits == 0, "a refund answered 503 debited the account"
    finally:
        await asyncio.to_thread(stack.temporal.start)
    retries: list[int] = []
    await asyncio.gather(*(request_refund(http, a, keys[a], retries) for a in accounts))
    # The reconciler re-drives pending refunds; a run now must not debit a second time.
    since = datetime.now(UTC) - timedelta(seconds=1)
    await billing.client.get_schedule_handle(RECONCILER_SCHEDULE_ID).trigger()

    async def reconciler_ran() -> bool:
        async for run in billing.client.list_workflows(
            "WorkflowType = 'ReconcilerWorkflow' AND ExecutionStatus = 'Completed'"
        ):
            if run.start_time >= since:
                return True
        return False

    await poll_until(reconciler_ran, 120, "a reconciler run after the refunds", every=1.0)
    await asyncio.to_thread(verify_refunds, stack, accounts)


# --- 4. a call workflow terminated mid-call -----------------------------------------------------


@pytest.mark.timeout(300)
async def test_terminated_call_is_charged_by_the_reconciler(
    stack: Stack, billing: BillingClient
) -> None:
    assert "reconcile_orphaned_calls" in RECONCILER_STEPS
    factory = get_sessionmaker(stack.database_url)
    accounts = await asyncio.to_thread(
        seed_accounts, factory, 1, top_up_paisa=5_000_000, prefix="chaos-terminated"
    )
    rng = random.Random("chaos-terminated")
    plan = make_plan("chaos-terminated-0001", accounts[0], rng)
    while not plan.expected_total_paisa:
        plan = make_plan("chaos-terminated-0001", accounts[0], rng)
    decision = await billing.authorize(plan.call_id, plan.account_id, plan.channel)
    assert decision.authorized
    await billing.report_usage(plan.call_id, {"events": plan.events})

    def scalar(sql: str) -> Any:
        with factory.begin() as session:
            return session.execute(text(sql), {"c": plan.call_id}).scalar()

    # Acknowledged usage is checkpointed to the ledger within 2 s: wait until it is.
    async def checkpointed() -> bool:
        count = scalar("SELECT count(*) FROM call_usage_events WHERE call_id = :c")
        return bool(count == len(plan.events))

    await poll_until(checkpointed, 60, "usage checkpointed")
    await billing.client.get_workflow_handle(call_workflow_id(plan.call_id)).terminate("chaos")
    # The sweep takes calls idle for a minute: age the row rather than wait that minute.
    scalar(
        "UPDATE calls SET updated_at = now() - interval '2 minutes' WHERE call_id = :c "
        "RETURNING call_id"
    )

    async def charged() -> bool:
        await billing.client.get_schedule_handle(RECONCILER_SCHEDULE_ID).trigger()
        with factory() as session:
            status = session.execute(
                text("SELECT status FROM calls WHERE call_id = :c"), {"c": plan.call_id}
            ).scalar_one()
        return bool(status == "finalized")

    await poll_until(charged, 120, "the terminated call finalized", every=10.0)
    with factory() as session:
        violations = check_ledger(session, accounts)
        assert not violations, "\n".join(str(v) for v in violations[:20])
        charges = (
            session.execute(
                text(
                    "SELECT amount_paisa FROM ledger_transactions "
                    "WHERE kind = 'call_charge' AND reference = :c"
                ),
                {"c": plan.call_id},
            )
            .scalars()
            .all()
        )
    assert charges == [-plan.expected_total_paisa]
