"""Activities of `AccountWorkflow`: the low-balance email (which marks its outbox row
delivered), and `send_once`, the email path shared with refunds and the reconciler.

`send_once` reserves the message's dedupe key in `email_log` (ledger.email_log) with the message
itself before calling the sender:
- inserted, re-claimed from `failed`, or taken over from a `sending` attempt past its lease: we
  own it, send, then mark it `sent`;
- the provider refused it (`EmailSendError`, a definite "not accepted"): mark `failed` so a later
  attempt may claim it again; retryable errors re-raise for the activity retry, others end as a
  non-retryable `ApplicationError`;
- the row is `sent`, or `sending` within its lease (another attempt is at it, or died moments
  ago): do not send (`duplicate`). A send that died stays `sending`; after the lease the
  reconciler (`resend_stuck`) sends the stored message again: at least once when something
  crashed, exactly once when nothing did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.email import templates
from adapters.email.sender import EmailMessage, EmailSender, EmailSendError
from db.session import run_in_transaction
from domain.contracts import LOW_BALANCE_ALERT_ACTIVITY, EmailOutcome
from domain.contracts.accounts import LowBalanceAlert
from ledger import accounts, alerts, email_log
from ledger.posting import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str


def load_recipient(factory: sessionmaker[Session], account_id: str) -> Recipient | None:
    with factory() as session:
        row = accounts.contact(session, account_id)
    return Recipient(row[0], row[1]) if row is not None else None


def _claim(
    factory: sessionmaker[Session], message: EmailMessage, account_id: str | None, template: str
) -> bool:
    return run_in_transaction(
        factory,
        lambda s: email_log.claim_email(
            s,
            dedupe_key=message.dedupe_key,
            account_id=account_id,
            to_email=message.to,
            template=template,
            message=asdict(message),
        ),
    )


def _finish(
    factory: sessionmaker[Session], key: str, status: str, message_id: str | None = None
) -> None:
    run_in_transaction(factory, lambda s: email_log.record_email_result(s, key, status, message_id))


async def send_once(
    factory: sessionmaker[Session],
    sender: EmailSender,
    message: EmailMessage,
    *,
    account_id: str | None,
    template: str,
) -> EmailOutcome:
    """Send `message` once per `message.dedupe_key`; returns `sent` or `duplicate`."""
    claimed = await asyncio.to_thread(_claim, factory, message, account_id, template)
    if not claimed:
        log.info("email %s already sent or being sent; not sending now", message.dedupe_key)
        return EmailOutcome.DUPLICATE
    try:
        message_id = await sender.send(message)
    except EmailSendError as exc:
        await asyncio.to_thread(_finish, factory, message.dedupe_key, email_log.FAILED)
        if exc.retryable:
            raise
        raise ApplicationError(
            f"email {message.dedupe_key} rejected: {exc}", type="EmailRejected", non_retryable=True
        ) from exc
    await asyncio.to_thread(_finish, factory, message.dedupe_key, email_log.SENT, message_id)
    return EmailOutcome.SENT


async def send_rendered_once(
    factory: sessionmaker[Session],
    sender: EmailSender,
    rendered: templates.RenderedEmail,
    *,
    to: str,
    from_email: str,
    dedupe_key: str,
    account_id: str,
) -> EmailOutcome:
    """`send_once` for a rendered template: the one way account and refund emails go out."""
    message = EmailMessage(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        dedupe_key=dedupe_key,
        category=rendered.template,
        from_email=from_email,
    )
    return await send_once(
        factory, sender, message, account_id=account_id, template=rendered.template
    )


async def resend_stuck(
    factory: sessionmaker[Session], sender: EmailSender, stuck: email_log.StuckSend
) -> bool:
    """Send a reclaimed stuck message again (the reconciler); True when the provider took it.
    A refusal marks it `failed` (a later attempt of its workflow may claim it again)."""
    message = EmailMessage(**stuck.message)
    try:
        message_id = await sender.send(message)
    except EmailSendError as exc:
        log.warning("stuck email %s not sent again: %s", stuck.dedupe_key, exc)
        await asyncio.to_thread(_finish, factory, stuck.dedupe_key, email_log.FAILED)
        return False
    await asyncio.to_thread(_finish, factory, stuck.dedupe_key, email_log.SENT, message_id)
    return True


def _mark_alert_delivered(factory: sessionmaker[Session], dedupe_key: str) -> None:
    run_in_transaction(factory, lambda s: alerts.mark_delivered(s, dedupe_key, utcnow()))


class AccountActivities:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        email_sender: EmailSender,
        *,
        email_from: str = "billing@osmtalk.example",
        dashboard_url: str = "http://127.0.0.1:8000",
    ) -> None:
        self.session_factory = session_factory
        self.email_sender = email_sender
        self.email_from = email_from
        self.dashboard_url = dashboard_url.rstrip("/")

    @activity.defn(name=LOW_BALANCE_ALERT_ACTIVITY)
    async def send_low_balance_alert(self, alert: LowBalanceAlert) -> EmailOutcome:
        outcome = await self._send_alert(alert)
        # Sent, or owned by the email log (which sends it again should this attempt have died).
        await asyncio.to_thread(_mark_alert_delivered, self.session_factory, alert.dedupe_key)
        return outcome

    async def _send_alert(self, alert: LowBalanceAlert) -> EmailOutcome:
        recipient = await asyncio.to_thread(load_recipient, self.session_factory, alert.account_id)
        if recipient is None:
            return EmailOutcome.NO_ACCOUNT
        rendered = templates.low_balance(
            account_name=recipient.name,
            available_paisa=alert.available_paisa,
            paid_paisa=alert.paid_paisa,
            promo_paisa=alert.promo_paisa,
            threshold_paisa=alert.threshold_paisa,
            topup_url=f"{self.dashboard_url}/billing",
        )
        return await send_rendered_once(
            self.session_factory,
            self.email_sender,
            rendered,
            to=recipient.email,
            from_email=self.email_from,
            dedupe_key=alert.dedupe_key,
            account_id=alert.account_id,
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.send_low_balance_alert]
