"""The real sendgrid client against the capture server over HTTP, and send_once's at-most-once
reservation in email_log on the real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.exceptions import ApplicationError

from activities.accounts import send_once
from adapters.email import templates
from adapters.email.sender import EmailMessage, EmailSendError, SendGridEmailSender
from db.models import EmailLog
from dev.email_capture import CaptureServer
from domain.contracts import EmailOutcome
from tests.support.email import fail_next, messages_to, uid


def message(to: str, key: str | None = None) -> EmailMessage:
    rendered = templates.low_balance(
        account_name="Asha <Rao>",
        available_paisa=950,
        paid_paisa=0,
        promo_paisa=950,
        threshold_paisa=1000,
        topup_url="http://127.0.0.1:8000/billing",
    )
    return EmailMessage(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        dedupe_key=key or uid("test"),
        category=rendered.template,
    )


def log_status(factory: sessionmaker[Session], key: str) -> str | None:
    with factory() as session:
        return session.scalar(select(EmailLog.status).where(EmailLog.dedupe_key == key))


class CrashAfterSend:
    """Delivers, then dies before the caller can record it (a worker killed mid-activity)."""

    def __init__(self, inner: SendGridEmailSender) -> None:
        self.inner = inner
        self.calls = 0

    async def send(self, msg: EmailMessage) -> str | None:
        self.calls += 1
        await self.inner.send(msg)
        raise RuntimeError("worker died after SendGrid accepted the message")


async def test_sendgrid_client_talks_to_capture_server(capture_server: CaptureServer) -> None:
    to = f"{uid('a')}@example.com"
    msg = message(to)
    sender = SendGridEmailSender("SG.key", capture_server.url)
    message_id = await sender.send(msg)
    [got] = messages_to(capture_server, to)
    assert message_id == got["id"]
    assert got["subject"] == "Your osmTalk balance is low (₹9.50)"
    assert got["from"] == "billing@osmtalk.example"
    assert "Asha <Rao>" in got["text"] and "Asha &lt;Rao&gt;" in got["html"]
    assert got["custom_args"] == {"dedupe_key": msg.dedupe_key}
    assert got["headers"]["X-Osmtalk-Dedupe-Key"] == msg.dedupe_key
    assert got["categories"] == ["low_balance"]


async def test_retries_5xx_then_gives_up(capture_server: CaptureServer) -> None:
    to = f"{uid('b')}@example.com"
    sender = SendGridEmailSender("SG.key", capture_server.url, attempts=2, backoff_seconds=0.01)
    fail_next(capture_server, 2, 503)
    with pytest.raises(EmailSendError) as info:
        await sender.send(message(to))
    assert info.value.retryable and info.value.status == 503
    fail_next(capture_server, 1, 500)
    await sender.send(message(to))
    assert len(messages_to(capture_server, to)) == 1


async def test_unreachable_host_is_retryable() -> None:
    sender = SendGridEmailSender("SG.key", "http://127.0.0.1:9", attempts=2, backoff_seconds=0.01)
    with pytest.raises(EmailSendError) as info:
        await sender.send(message("x@example.com"))
    assert info.value.retryable


async def test_send_once_never_sends_a_key_twice(
    capture_server: CaptureServer, session_factory: sessionmaker[Session]
) -> None:
    to = f"{uid('c')}@example.com"
    msg = message(to)
    sender = SendGridEmailSender("SG.key", capture_server.url)
    first = await send_once(session_factory, sender, msg, account_id=None, template="low_balance")
    again = await send_once(session_factory, sender, msg, account_id=None, template="low_balance")
    assert (first, again) == (EmailOutcome.SENT, EmailOutcome.DUPLICATE)
    assert len(messages_to(capture_server, to)) == 1
    assert log_status(session_factory, msg.dedupe_key) == "sent"


async def test_definite_failure_releases_the_key_for_the_retry(
    capture_server: CaptureServer, session_factory: sessionmaker[Session]
) -> None:
    to = f"{uid('d')}@example.com"
    msg = message(to)
    sender = SendGridEmailSender("SG.key", capture_server.url, attempts=1)
    fail_next(capture_server, 1, 503)
    with pytest.raises(EmailSendError):
        await send_once(session_factory, sender, msg, account_id=None, template="low_balance")
    assert log_status(session_factory, msg.dedupe_key) == "failed"
    # The activity's retry claims the key again and sends exactly once.
    assert (
        await send_once(session_factory, sender, msg, account_id=None, template="x")
        == EmailOutcome.SENT
    )
    assert len(messages_to(capture_server, to)) == 1


async def test_rejection_is_not_retried(
    capture_server: CaptureServer, session_factory: sessionmaker[Session]
) -> None:
    sender = SendGridEmailSender("SG.key", capture_server.url)
    fail_next(capture_server, 1, 400)
    with pytest.raises(ApplicationError) as info:
        await send_once(
            session_factory, sender, message("e@example.com"), account_id=None, template="x"
        )
    assert info.value.non_retryable


async def test_crash_between_send_and_record_never_sends_twice(
    capture_server: CaptureServer, session_factory: sessionmaker[Session]
) -> None:
    to = f"{uid('f')}@example.com"
    msg = message(to)
    crashing = CrashAfterSend(SendGridEmailSender("SG.key", capture_server.url))
    with pytest.raises(RuntimeError):
        await send_once(session_factory, crashing, msg, account_id=None, template="low_balance")
    assert log_status(session_factory, msg.dedupe_key) == "sending"  # in doubt
    retry = await send_once(
        session_factory,
        SendGridEmailSender("SG.key", capture_server.url),
        msg,
        account_id=None,
        template="low_balance",
    )
    assert retry == EmailOutcome.DUPLICATE
    assert len(messages_to(capture_server, to)) == 1
