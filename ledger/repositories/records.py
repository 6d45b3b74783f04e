"""At-most-once records that are not money: HTTP `Idempotency-Key` answers and the email log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import EmailLog, IdempotencyRecord


def insert_idempotency_record(
    session: Session, principal: str, key: str, method: str, path: str, request_hash: str
) -> bool:
    """A placeholder for an answer still to come; False when the key already has a record."""
    inserted = session.execute(
        insert(IdempotencyRecord)
        .values(principal=principal, key=key, method=method, path=path, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    ).first()
    return inserted is not None


def idempotency_record(session: Session, principal: str, key: str) -> IdempotencyRecord:
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    ).one()


def take_over_idempotency_record(
    session: Session, principal: str, key: str, request_hash: str, claimed_before: datetime
) -> bool:
    """An in-flight record (no answer) of the same request claimed before `claimed_before` (its
    request died without releasing it) becomes the caller's; False when it is not one."""
    taken = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
            IdempotencyRecord.request_hash == request_hash,
            IdempotencyRecord.status_code.is_(None),
            IdempotencyRecord.created_at < claimed_before,
        )
        .values(created_at=func.now())
        .returning(IdempotencyRecord.key)
    ).first()
    return taken is not None


def delete_idempotency_records_before(session: Session, before: datetime, limit: int) -> int:
    """Forget records (answered or not) created before `before`, at most `limit` of them."""
    doomed = (
        select(IdempotencyRecord.principal, IdempotencyRecord.key)
        .where(IdempotencyRecord.created_at < before)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = session.execute(
        delete(IdempotencyRecord)
        .where(tuple_(IdempotencyRecord.principal, IdempotencyRecord.key).in_(doomed))
        .returning(IdempotencyRecord.key)
    ).all()
    return len(deleted)


def set_idempotency_answer(
    session: Session, principal: str, key: str, status_code: int, body: Any
) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
        .values(status_code=status_code, response_body=body)
    )


def delete_pending_idempotency_record(session: Session, principal: str, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status_code.is_(None),
        )
    )


def insert_email(
    session: Session,
    dedupe_key: str,
    account_id: str | None,
    to_email: str,
    template: str,
    message: dict[str, Any] | None = None,
) -> bool:
    """Reserve a dedupe key as `sending`; False when the key already has a row."""
    inserted = session.execute(
        insert(EmailLog)
        .values(
            dedupe_key=dedupe_key,
            account_id=account_id,
            to_email=to_email,
            template=template,
            status="sending",
            message=message,
        )
        .on_conflict_do_nothing(index_elements=[EmailLog.dedupe_key])
        .returning(EmailLog.dedupe_key)
    ).first()
    return inserted is not None


def reclaim_email(
    session: Session,
    dedupe_key: str,
    to_email: str,
    message: dict[str, Any] | None,
    claimed_before: datetime,
) -> bool:
    """A `failed` row, or one left `sending` since before `claimed_before`, back to `sending`
    for this caller; False otherwise (sent, or another attempt still within its lease)."""
    reclaimed = session.execute(
        update(EmailLog)
        .where(
            EmailLog.dedupe_key == dedupe_key,
            or_(
                EmailLog.status == "failed",
                (EmailLog.status == "sending") & (EmailLog.claimed_at < claimed_before),
            ),
        )
        .values(
            status="sending",
            to_email=to_email,
            attempts=EmailLog.attempts + 1,
            claimed_at=func.now(),
            **({"message": message} if message is not None else {}),
        )
        .returning(EmailLog.dedupe_key)
    ).first()
    return reclaimed is not None


def reclaim_stuck_emails(
    session: Session, claimed_before: datetime, limit: int
) -> Sequence[tuple[str, str | None, dict[str, Any]]]:
    """Sends left `sending` since before `claimed_before` that can be sent again (their message
    is stored), claimed anew: (dedupe_key, account_id, message)."""
    stuck = (
        select(EmailLog.dedupe_key)
        .where(
            EmailLog.status == "sending",
            EmailLog.claimed_at < claimed_before,
            EmailLog.message.is_not(None),
        )
        .order_by(EmailLog.claimed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(EmailLog)
        .where(EmailLog.dedupe_key.in_(stuck))
        .values(attempts=EmailLog.attempts + 1, claimed_at=func.now())
        .returning(EmailLog.dedupe_key, EmailLog.account_id, EmailLog.message)
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def count_stuck_emails_without_message(session: Session, claimed_before: datetime) -> int:
    """Stuck sends from before the log kept messages: nothing to send again, reported only."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(EmailLog)
            .where(
                EmailLog.status == "sending",
                EmailLog.claimed_at < claimed_before,
                EmailLog.message.is_(None),
            )
        )
        or 0
    )


def set_email_status(
    session: Session,
    dedupe_key: str,
    status: str,
    *,
    provider_message_id: str | None = None,
    sent_at: datetime | None = None,
) -> None:
    values: dict[str, object] = {"status": status}
    if sent_at is not None:
        values.update(provider_message_id=provider_message_id, sent_at=sent_at)
    session.execute(update(EmailLog).where(EmailLog.dedupe_key == dedupe_key).values(**values))
