"""The email log: at most one email per dedupe key. A key is reserved (`sending`) before the
provider is called and marked `sent` or `failed` after; only a `failed` key may be claimed
again (activities.accounts.send_once explains the at-most-once choice)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ledger.posting import utcnow
from ledger.repositories import records

SENDING = "sending"
SENT = "sent"
FAILED = "failed"


def claim_email(
    session: Session, *, dedupe_key: str, account_id: str | None, to_email: str, template: str
) -> bool:
    """True when this caller owns the key now (new, or re-claimed from `failed`)."""
    if records.insert_email(session, dedupe_key, account_id, to_email, template):
        return True
    return records.reclaim_failed_email(session, dedupe_key, to_email)


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
