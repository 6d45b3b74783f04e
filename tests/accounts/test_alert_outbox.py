"""Alerts that cannot be lost: the crossing is in the ledger with the charge that caused it, so
the alert goes out even when the hand-over, the worker or SendGrid failed at that moment, and
even though no further charge happens (new calls are refused by then)."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

from sqlalchemy import select
from temporalio.client import Client

from activities.alerts import AlertPublisher
from db.models import AlertOutbox
from domain.contracts import low_balance_alert_key
from ledger import calls as ledger_calls
from tests.support.email import Harness, eventually, fail_next, messages_to, uid

ONE_MILLION = 1_000_000  # 1625 paisa
NOW = timedelta(0)  # no grace: the sweep takes rows recorded a moment ago


def outbox(h: Harness, account_id: str) -> list[AlertOutbox]:
    with h.session_factory() as session:
        return list(
            session.scalars(select(AlertOutbox).where(AlertOutbox.account_id == account_id))
        )


async def unreachable_temporal() -> Client:
    """A client whose server is gone (nothing listens on its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return await Client.connect(f"127.0.0.1:{port}", lazy=True)


async def test_alert_goes_out_although_no_further_charge_happens(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account()  # ₹50 welcome promo
    # The charge that crosses commits, and handing the crossing over fails (Temporal is
    # unreachable from this caller at that moment).
    crossing = await h.charge(account_id, 3 * ONE_MILLION, commit_only=True)  # 5000 - 4875
    assert crossing.available_paisa == 125
    dead = AlertPublisher(h.session_factory, await unreachable_temporal(), task_queue=h.task_queue)
    await dead.after_commit(crossing)
    [row] = outbox(h, account_id)
    assert row.delivered_at is None
    # From now on the account cannot start anything: there is no next charge to carry it.
    refused = h.tx(
        lambda s: ledger_calls.authorize_call(
            s, h.policy, call_id=uid("call"), account_id=account_id, channel="phone"
        )
    )
    assert not refused.authorized

    # The reconciler's sweep finds the undelivered crossing and hands it over: one email.
    # (The sweep takes every undelivered row of the database: other tests leave some.)
    report = await h.reconciler(alert_grace=NOW).deliver_alert_outbox()
    assert report.findings["alert_redelivered"] >= 1
    [mail] = await eventually(lambda: messages_to(h.capture, email))
    assert mail["dedupe_key"] == low_balance_alert_key(account_id, crossing.version)
    assert "₹1.25" in mail["subject"]
    await eventually(lambda: all(row.delivered_at for row in outbox(h, account_id)))


async def test_crossing_survives_a_dead_caller_and_a_sendgrid_outage(harness: Harness) -> None:
    h = harness
    account_id, email = await h.new_account()
    crossing = await h.charge(account_id, 4 * ONE_MILLION, commit_only=True)  # the caller died
    key = low_balance_alert_key(account_id, crossing.version)
    # A fresh crossing is its caller's to deliver: the reconciler leaves it for its grace period.
    await h.reconciler().deliver_alert_outbox()
    [row] = outbox(h, account_id)
    assert row.attempts == 0 and row.delivered_at is None
    attempts_before = h.capture.state.send_attempts
    fail_next(h.capture, 5, 503)  # the first activity attempt's 4 tries, then one more
    # (The sweep takes every undelivered row of the database: other tests leave some.)
    report = await h.reconciler(alert_grace=NOW).deliver_alert_outbox()
    assert report.findings["alert_redelivered"] >= 1
    [mail] = await eventually(lambda: messages_to(h.capture, email))
    assert mail["dedupe_key"] == key
    await eventually(lambda: all(row.delivered_at for row in outbox(h, account_id)))
    assert h.capture.state.send_attempts - attempts_before == 6
    # Delivered: later sweeps leave it alone.
    await h.reconciler(alert_grace=NOW).deliver_alert_outbox()
    [row] = outbox(h, account_id)
    assert row.attempts == 1
    await asyncio.sleep(0.5)
    assert len(messages_to(h.capture, email)) == 1
