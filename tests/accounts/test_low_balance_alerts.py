"""AccountWorkflow on the real dev server: low-balance alerts through the real sendgrid client to
the capture server, once per crossing."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer

from domain.contracts import account_workflow_id
from domain.contracts.accounts import AccountStatus, AccountWorkflowInput
from tests.support.email import Harness, eventually, fail_next, messages_to
from workflows.accounts import AccountWorkflow, low_balance_dedupe_key

# gpt-4o-mini input tokens -> paisa charged with the 30% margin (default rate card)
TWO_MILLION = 2_000_000  # 2500 + 750 = 3250
ONE_MILLION = 1_000_000  # 1250 + 375 = 1625
SMALL = 100_000  # 125 + 38 = 163


def handle_for(h: Harness, account_id: str) -> WorkflowHandle[AccountWorkflow, None]:
    return h.client.get_workflow_handle_for(AccountWorkflow.run, account_workflow_id(account_id))


async def settled(h: Harness, account_id: str, version: int) -> AccountStatus:
    """Wait until the workflow has seen `version` and has no alert in flight."""
    handle = handle_for(h, account_id)

    async def check() -> AccountStatus | None:
        status = await handle.query(AccountWorkflow.status)
        done = status.state.last_version >= version and status.state.pending_alert is None
        return status if done else None

    return await eventually(check)


async def test_one_email_per_crossing_and_top_up_rearms(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account()  # welcome promo: available ₹50.00
    above = await h.charge(account_id, TWO_MILLION)
    assert above.available_paisa == 1750 >= above.alert_threshold_paisa == 1000
    await settled(h, account_id, above.version)
    assert messages_to(h.capture, email) == []

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
    status = await settled(h, account_id, deeper.version)
    assert status.state.alerts_sent == 1 and not status.state.armed
    assert len(messages_to(h.capture, email)) == 1

    # A top-up re-arms; the next crossing sends the second alert.
    topped = await h.top_up(account_id, 10_000)
    status = await settled(h, account_id, topped.version)
    assert status.state.armed
    second_crossing = await h.charge(account_id, 6 * ONE_MILLION)  # 9750
    assert second_crossing.available_paisa == 212
    await settled(h, account_id, second_crossing.version)
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
    status = await settled(h, account_id, crossing.version)
    assert status.state.alerts_sent == 1
    messages = messages_to(h.capture, email)
    assert len(messages) == 1
    assert messages[0]["dedupe_key"] == low_balance_dedupe_key(account_id, crossing.version)
    assert h.capture.state.send_attempts - attempts_before == 3  # 503, 503, 202


async def test_stale_snapshot_is_ignored(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account(paid_paisa=2000)
    current = h.balance(account_id)
    stale = dataclasses.replace(current, paid_paisa=0, promo_paisa=0, version=current.version - 1)
    await h.notify(stale)
    handle = handle_for(h, account_id)

    async def stale_seen() -> AccountStatus | None:
        status = await handle.query(AccountWorkflow.status)
        return status if status.state.stale_ignored >= 1 else None

    status = await eventually(stale_seen)
    assert status.state.armed and status.state.alerts_sent == 0
    assert status.state.available_paisa == current.available_paisa
    assert messages_to(h.capture, email) == []


async def test_state_survives_continue_as_new(
    harness: Harness, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--workflow-environment") == "time-skipping":
        pytest.skip("the time-skipping test server times out queries across continue-as-new")
    h = harness
    account_id, email = await h.new_account(notify=False)
    started = await h.client.start_workflow(
        AccountWorkflow.run,
        AccountWorkflowInput(account_id=account_id, continue_as_new_after_signals=3),
        id=account_workflow_id(account_id),
        task_queue=h.task_queue,
    )
    first_run = started.result_run_id
    crossing = await h.charge(account_id, 4 * ONE_MILLION)  # -> -1500: alert
    await eventually(lambda: messages_to(h.capture, email))
    for _ in range(4):  # more signals below the threshold, across continue-as-new
        last = await h.charge(account_id, SMALL)
    status = await settled(h, account_id, last.version)
    description = await handle_for(h, account_id).describe()
    assert description.run_id != first_run  # continued as new at least once
    assert status.state.alerts_sent == 1 and not status.state.armed
    assert len(messages_to(h.capture, email)) == 1
    topped = await h.top_up(account_id, 20_000)
    await settled(h, account_id, topped.version)
    again = await h.charge(account_id, 14 * ONE_MILLION)  # 22750
    assert again.available_paisa < 1000
    await settled(h, account_id, again.version)
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
    crossing = await h.charge(account_id, 4 * ONE_MILLION)
    status = await settled(h, account_id, crossing.version)
    assert status.state.alerts_sent == 1
    assert len(messages_to(h.capture, email)) == 1
    assert h.capture.state.send_attempts - attempts_before == 6


async def test_histories_replay_deterministically(harness: Harness) -> None:
    h = harness
    account_id, _ = await h.new_account()
    crossing = await h.charge(account_id, 4 * ONE_MILLION)
    await h.top_up(account_id, 10_000)
    last = await h.charge(account_id, 8 * ONE_MILLION)
    await settled(h, account_id, last.version)
    assert crossing.version < last.version
    history = await handle_for(h, account_id).fetch_history()
    await Replayer(workflows=[AccountWorkflow]).replay_workflow(history)
