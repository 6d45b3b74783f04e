"""The email log: one email per dedupe key. A key is reserved (`sending`, with the message)
before the provider is called and marked `sent` or `failed` after. A `failed` key may be claimed
again at once; a key left `sending` (the attempt died between reserving and recording: a worker
killed, a cancellation) only after its lease, by the next attempt or by the reconciler, which
sends the stored message again. So an email goes out at least once after a crash, and exactly
once otherwise (activities.accounts.send_once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from ledger.posting import utcnow
from ledger.repositories import records

SENDING = "sending"
SENT = "sent"
FAILED = "failed"
# Longer than any one attempt to send (the SendGrid sender's retries, the activity's timeout).
SENDING_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class StuckSend:
    dedupe_key: str
    account_id: str | None
    message: dict[str, Any]


def claim_email(
    session: Session,
    *,
    dedupe_key: str,
    account_id: str | None,
    to_email: str,
    template: str,
    message: dict[str, Any] | None = None,
    lease: timedelta = SENDING_LEASE,
) -> bool:
    """True when this caller owns the key now (new, re-claimed from `failed`, or taken over
    from a `sending` attempt older than `lease`)."""
    if records.insert_email(session, dedupe_key, account_id, to_email, template, message):
        return True
    return records.reclaim_email(session, dedupe_key, to_email, message, utcnow() - lease)


def reclaim_stuck(
    session: Session, *, lease: timedelta = SENDING_LEASE, limit: int = 100
) -> list[StuckSend]:
    """Sends left `sending` longer than `lease`, claimed anew for the caller to send again."""
    rows = records.reclaim_stuck_emails(session, utcnow() - lease, limit)
    return [StuckSend(key, account_id, message) for key, account_id, message in rows]


def count_unrecoverable(session: Session, *, lease: timedelta = SENDING_LEASE) -> int:
    """Stuck sends without a stored message (logged before messages were kept)."""
    return records.count_stuck_emails_without_message(session, utcnow() - lease)


def record_email_result(
    session: Session, dedupe_key: str, status: str, provider_message_id: str | None = None
) -> None:
    if status == SENT:
        records.set_email_status(
            session,
            dedupe_key,
            status,
            provider_message_id=provider_message_id,
            sent_at=utcnow(),
        )
    else:
        records.set_email_status(session, dedupe_key, status)
