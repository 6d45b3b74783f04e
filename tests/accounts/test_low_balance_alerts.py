"""AccountWorkflow on the real dev server: low-balance alerts from the ledger's outbox through the
real sendgrid client to the capture server, once per crossing."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer

from adapters.balance_events import publish_low_balance_alerts
from db.models import Account, AlertOutbox
from domain.contracts import BALANCE_CHANGED_SIGNAL, account_workflow_id
from domain.contracts.accounts import AccountStatus, AccountWorkflowInput, LowBalanceAlert
from tests.support.email import Harness, eventually, fail_next, messages_to
from workflows.accounts import AccountWorkflow, low_balance_dedupe_key

# gpt-4o-mini input tokens -> paisa charged with the 30% margin (default rate card)
TWO_MILLION = 2_000_000  # 2500 + 750 = 3250
ONE_MILLION = 1_000_000  # 1250 + 375 = 1625
SMALL = 100_000  # 125 + 38 = 163


def handle_for(h: Harness, account_id: str) -> WorkflowHandle[AccountWorkflow, None]:
    return h.client.get_workflow_handle_for(AccountWorkflow.run, account_workflow_id(account_id))


def outbox(h: Harness, account_id: str) -> list[AlertOutbox]:
    with h.session_factory() as session:
        return list(
            session.scalars(
                select(AlertOutbox)
                .where(AlertOutbox.account_id == account_id)
                .order_by(AlertOutbox.id)
            )
        )


def armed(h: Harness, account_id: str) -> bool:
    with h.session_factory() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.low_balance_armed


async def settled(h: Harness, account_id: str) -> AccountStatus:
    """Wait until every crossing of the account is delivered and the workflow is idle."""
    handle = handle_for(h, account_id)

    async def check() -> AccountStatus | None:
        if any(row.delivered_at is None for row in outbox(h, account_id)):
            return None
        status = await handle.query(AccountWorkflow.status)
        return status if not status.state.queued_alerts else None

    return await eventually(check)


async def test_one_email_per_crossing_and_top_up_rearms(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account()  # welcome promo: available ₹50.00
    above = await h.charge(account_id, TWO_MILLION)
    assert above.available_paisa == 1750 >= above.alert_threshold_paisa == 1000
    assert outbox(h, account_id) == [] and armed(h, account_id)

    crossing = await h.charge(account_id, ONE_MILLION)
    assert crossing.available_paisa == 125
    first = await eventually(lambda: messages_to(h.capture, email))
    assert len(first) == 1
    message = first[0]
    assert message["to"] == [email]
    assert message["dedupe_key"] == low_balance_dedupe_key(account_id, crossing.version)
    assert "₹1.25" in message["subject"]
    assert "₹1.25" in message["text"] and "Top up" in message["text"]
    assert message["html"].startswith("<!doctype html>") and "₹10.00" in message["html"]

    # Further charges below the threshold: no more email.
    deeper = await h.charge(account_id, SMALL)
    assert deeper.available_paisa == -38
    status = await settled(h, account_id)
    assert status.state.alerts_sent == 1 and not armed(h, account_id)
    assert len(outbox(h, account_id)) == 1
    assert len(messages_to(h.capture, email)) == 1

    # A top-up re-arms (in the ledger); the next crossing sends the second alert.
    await h.top_up(account_id, 10_000)
    assert armed(h, account_id)
    second_crossing = await h.charge(account_id, 6 * ONE_MILLION)  # 9750
    assert second_crossing.available_paisa == 212
    await settled(h, account_id)
    both = messages_to(h.capture, email)
    assert [m["dedupe_key"] for m in both] == [
        low_balance_dedupe_key(account_id, crossing.version),
        low_balance_dedupe_key(account_id, second_crossing.version),
    ]


async def test_sendgrid_503_twice_still_one_email(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account()
    attempts_before = h.capture.state.send_attempts
    fail_next(h.capture, 2, 503)
    crossing = await h.charge(account_id, 4 * ONE_MILLION)  # 6500 -> -1500
    assert crossing.available_paisa == -1500
    status = await settled(h, account_id)
    assert status.state.alerts_sent == 1
    messages = messages_to(h.capture, email)
    assert len(messages) == 1
    assert messages[0]["dedupe_key"] == low_balance_dedupe_key(account_id, crossing.version)
    assert h.capture.state.send_attempts - attempts_before == 3  # 503, 503, 202


async def test_legacy_balance_snapshots_still_alert_and_stale_ones_are_ignored(
    harness: Harness,
) -> None:
    """Workflows started before the outbox keep handling `balance_changed` as they did."""
    h = harness
    account_id, email = await h.new_account(paid_paisa=2000)
    current = h.balance(account_id)
    handle = await h.client.start_workflow(
        AccountWorkflow.run,
        AccountWorkflowInput(account_id=account_id),
        id=account_workflow_id(account_id),
        task_queue=h.task_queue,
        start_signal=BALANCE_CHANGED_SIGNAL,
        start_signal_args=[current],
    )
    stale = dataclasses.replace(current, paid_paisa=0, promo_paisa=0, version=current.version - 1)
    await handle.signal(BALANCE_CHANGED_SIGNAL, stale)

    async def stale_seen() -> AccountStatus | None:
        status = await handle.query(AccountWorkflow.status)
        return status if status.state.stale_ignored >= 1 else None

    status = await eventually(stale_seen)
    assert status.state.armed and status.state.alerts_sent == 0
    assert status.state.available_paisa == current.available_paisa
    assert messages_to(h.capture, email) == []
    low = dataclasses.replace(current, paid_paisa=0, promo_paisa=100, version=current.version + 1)
    await handle.signal(BALANCE_CHANGED_SIGNAL, low)
    [mail] = await eventually(lambda: messages_to(h.capture, email))
    assert mail["dedupe_key"] == low_balance_dedupe_key(account_id, low.version)


async def test_state_survives_continue_as_new(
    harness: Harness, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--workflow-environment") == "time-skipping":
        pytest.skip("the time-skipping test server times out queries across continue-as-new")
    h = harness
    account_id, email = await h.new_account()
    started = await h.client.start_workflow(
        AccountWorkflow.run,
        AccountWorkflowInput(account_id=account_id, continue_as_new_after_signals=3),
        id=account_workflow_id(account_id),
        task_queue=h.task_queue,
    )
    first_run = started.result_run_id
    crossing = await h.charge(account_id, 4 * ONE_MILLION)  # -> -1500: alert
    await eventually(lambda: messages_to(h.capture, email))
    await settled(h, account_id)
    # The same outbox row handed over again (a reconciler sweep racing the delivery), across
    # continue-as-new: skipped every time.
    [alert] = [row.payload for row in outbox(h, account_id)]
    for _ in range(4):
        accepted = await publish_low_balance_alerts(
            h.client, [LowBalanceAlert(**alert)], task_queue=h.task_queue
        )
        assert accepted == [alert["dedupe_key"]]
    handle = handle_for(h, account_id)

    async def duplicates_seen() -> AccountStatus | None:
        status = await handle.query(AccountWorkflow.status)
        return status if status.state.duplicate_alerts >= 4 else None

    status = await eventually(duplicates_seen)
    description = await handle.describe()
    assert description.run_id != first_run  # continued as new at least once
    assert status.state.alerts_sent == 1
    assert len(messages_to(h.capture, email)) == 1
    await h.top_up(account_id, 20_000)
    again = await h.charge(account_id, 14 * ONE_MILLION)  # 22750
    assert again.available_paisa < 1000
    await settled(h, account_id)
    keys = [m["dedupe_key"] for m in messages_to(h.capture, email)]
    assert keys == [
        low_balance_dedupe_key(account_id, crossing.version),
        low_balance_dedupe_key(account_id, again.version),
    ]


async def test_activity_retry_after_sendgrid_outage_sends_once(harness: Harness) -> None:
    """The sender's own retries (4 tries) run out on five 503s; the activity fails, its retry
    re-claims the released dedupe key and the email goes out exactly once."""
    h = harness
    account_id, email = await h.new_account()
    attempts_before = h.capture.state.send_attempts
    fail_next(h.capture, 5, 503)
    await h.charge(account_id, 4 * ONE_MILLION)
    status = await settled(h, account_id)
    assert status.state.alerts_sent == 1
    assert len(messages_to(h.capture, email)) == 1
    assert h.capture.state.send_attempts - attempts_before == 6


async def test_histories_replay_deterministically(harness: Harness) -> None:
    h = harness
    account_id, _ = await h.new_account()
    crossing = await h.charge(account_id, 4 * ONE_MILLION)
    await h.top_up(account_id, 10_000)
    last = await h.charge(account_id, 8 * ONE_MILLION)
    await settled(h, account_id)
    assert crossing.version < last.version
    history = await handle_for(h, account_id).fetch_history()
    await Replayer(workflows=[AccountWorkflow]).replay_workflow(history)
