"""The `EmailSender` interface and its implementations.

- `SendGridEmailSender`: the official `sendgrid` client (`SENDGRID_API_KEY`, `SENDGRID_HOST`),
  retrying 5xx answers, 429 and timeouts/connection errors a few times with backoff. Each message
  carries its dedupe key as a SendGrid custom arg (`dedupe_key`, shows up in event webhooks) and
  as the `X-Osmtalk-Dedupe-Key` header.
- `LogEmailSender`: writes the message to the log (no key and no host configured).
- `RecordingEmailSender`: keeps messages in memory (unit tests of callers).

Trade-off: a read timeout is ambiguous (SendGrid may have accepted the message); the issue asks
for retries on timeouts, so such a retry can in rare cases deliver twice. SendGrid has no
idempotency key; the dedupe key in custom args lets the event webhook spot it.

The at-most-once guarantee per dedupe key lives one level up (activities.accounts.send_once,
backed by the `email_log` table); a sender only delivers one message, possibly retrying.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, CustomArg, Header, Mail

log = logging.getLogger(__name__)

DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
CAPTURE_SERVER_API_KEY = "capture-server"  # any key works against the local capture server
DEDUPE_HEADER = "X-Osmtalk-Dedupe-Key"


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    dedupe_key: str
    category: str = "billing"
    from_email: str = "billing@osmtalk.example"


class EmailSendError(Exception):
    """The provider did not accept the message. `retryable`: a later try may succeed
    (5xx, 429, timeouts); otherwise (4xx) retrying the same message is pointless."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@runtime_checkable
class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> str | None:
        """Deliver one message; returns the provider's message id when it gives one.
        Raises EmailSendError when the provider did not accept it."""
        ...


def build_mail(message: EmailMessage) -> Mail:
    mail = Mail(
        from_email=message.from_email,
        to_emails=message.to,
        subject=message.subject,
        plain_text_content=message.text,
        html_content=message.html,
    )
    mail.custom_arg = CustomArg("dedupe_key", message.dedupe_key)
    mail.header = Header(DEDUPE_HEADER, message.dedupe_key)
    mail.category = Category(message.category)
    return mail


class SendGridEmailSender:
    def __init__(
        self,
        api_key: str,
        host: str | None = None,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.25,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.host = (host or DEFAULT_SENDGRID_HOST).rstrip("/")
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds

    def _send_once(self, body: dict[str, object]) -> str | None:
        # A fresh client per request: python_http_client keeps mutable per-client headers.
        client = SendGridAPIClient(api_key=self.api_key, host=self.host)
        try:
            response = client.client.mail.send.post(request_body=body, timeout=self.timeout_seconds)
        except HTTPError as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            retryable = status >= 500 or status == 429
            raise EmailSendError(
                f"SendGrid answered {status}", retryable=retryable, status=status
            ) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise EmailSendError(f"SendGrid unreachable: {exc}", retryable=True) from exc
        if response.status_code >= 300:
            raise EmailSendError(
                f"SendGrid answered {response.status_code}",
                retryable=response.status_code >= 500,
                status=response.status_code,
            )
        headers = response.headers
        message_id = headers.get("X-Message-Id") if headers is not None else None
        return str(message_id) if message_id else None

    async def send(self, message: EmailMessage) -> str | None:
        body = build_mail(message).get()
        delay = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            try:
                return await asyncio.to_thread(self._send_once, body)
            except EmailSendError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                log.warning(
                    "sendgrid attempt %d/%d for %s failed: %s; retrying",
                    attempt,
                    self.attempts,
                    message.dedupe_key,
                    exc,
                )
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


class LogEmailSender:
    """Development fallback: logs instead of sending."""

    async def send(self, message: EmailMessage) -> str | None:
        log.info(
            "email (not sent, no SendGrid configured) to=%s subject=%r key=%s",
            message.to,
            message.subject,
            message.dedupe_key,
        )
        return None


@dataclass
class RecordingEmailSender:
    sent: list[EmailMessage] = field(default_factory=list)

    async def send(self, message: EmailMessage) -> str | None:
        self.sent.append(message)
        return f"rec-{len(self.sent)}"


def email_sender_from_settings() -> EmailSender:
    """SENDGRID_API_KEY set: real SendGrid (SENDGRID_HOST overrides the host). Only
    SENDGRID_HOST set: the local capture server (`make serve` starts it and sets the host).
    Neither: log only."""
    from core.config import get_settings

    settings = get_settings()
    if settings.sendgrid_api_key:
        return SendGridEmailSender(settings.sendgrid_api_key, settings.sendgrid_host)
    if settings.sendgrid_host:
        return SendGridEmailSender(CAPTURE_SERVER_API_KEY, settings.sendgrid_host)
    return LogEmailSender()
