"""An email whose sender died between reserving its key and recording the result (`sending`)
is sent again by the reconciler once its lease has passed: at least once after a crash, and
never twice while an attempt may still be at it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from activities.accounts import send_once
from adapters.email.sender import EmailMessage, SendGridEmailSender
from db.models import EmailLog
from domain.contracts import EmailOutcome
from tests.support.email import Harness, eventually, messages_to, uid


class DyingSender:
    """A worker killed while the message is on its way: the send never returns."""

    async def send(self, message: EmailMessage) -> str | None:
        raise asyncio.CancelledError


def status_of(h: Harness, key: str) -> tuple[str, int]:
    with h.session_factory() as session:
        row = session.get(EmailLog, key)
        assert row is not None
        return row.status, row.attempts


async def test_a_stuck_send_is_sent_again_after_its_lease(harness: Harness) -> None:
    h = harness
    to = f"{uid('cust')}@example.com"
    message = EmailMessage(
        to=to, subject="Low balance", text="Top up", html="<p>Top up</p>", dedupe_key=uid("k")
    )
    with pytest.raises(asyncio.CancelledError):
        await send_once(
            h.session_factory, DyingSender(), message, account_id=None, template="low_balance"
        )
    assert status_of(h, message.dedupe_key) == ("sending", 1)
    sender = SendGridEmailSender("SG.test-key", h.capture.url, backoff_seconds=0.05)

    # Within the lease an attempt may still be at it: nobody sends.
    outcome = await send_once(
        h.session_factory, sender, message, account_id=None, template="low_balance"
    )
    assert outcome == EmailOutcome.DUPLICATE
    await h.reconciler().reclaim_stuck_emails()
    assert status_of(h, message.dedupe_key) == ("sending", 1)
    assert messages_to(h.capture, to) == []

    # Past the lease: the reconciler sends the stored message.
    h.tx(
        lambda s: s.execute(
            update(EmailLog)
            .where(EmailLog.dedupe_key == message.dedupe_key)
            .values(claimed_at=EmailLog.claimed_at - timedelta(minutes=5))
        )
    )
    report = await h.reconciler().reclaim_stuck_emails()
    assert report.findings["email_resent"] >= 1
    [mail] = await eventually(lambda: messages_to(h.capture, to))
    assert mail["dedupe_key"] == message.dedupe_key and mail["subject"] == "Low balance"
    assert status_of(h, message.dedupe_key) == ("sent", 2)
    # Sent: neither another sweep nor a late retry sends it again.
    await h.reconciler(email_lease=timedelta(0)).reclaim_stuck_emails()
    again = await send_once(
        h.session_factory, sender, message, account_id=None, template="low_balance"
    )
    assert again == EmailOutcome.DUPLICATE
    assert len(messages_to(h.capture, to)) == 1


async def test_an_attempt_past_the_lease_takes_the_send_over(harness: Harness) -> None:
    """The activity's own retry (after its timeout) may take over too: one email."""
    h = harness
    to = f"{uid('cust')}@example.com"
    message = EmailMessage(to=to, subject="s", text="t", html="<p>t</p>", dedupe_key=uid("k"))
    with pytest.raises(asyncio.CancelledError):
        await send_once(h.session_factory, DyingSender(), message, account_id=None, template="x")
    h.tx(
        lambda s: s.execute(
            update(EmailLog)
            .where(EmailLog.dedupe_key == message.dedupe_key)
            .values(claimed_at=EmailLog.claimed_at - timedelta(minutes=5))
        )
    )
    sender = SendGridEmailSender("SG.test-key", h.capture.url, backoff_seconds=0.05)
    outcome = await send_once(h.session_factory, sender, message, account_id=None, template="x")
    assert outcome == EmailOutcome.SENT
    await h.reconciler().reclaim_stuck_emails()
    assert len(messages_to(h.capture, to)) == 1 and status_of(h, message.dedupe_key)[0] == "sent"
