"""At-most-once records that are not money: HTTP `Idempotency-Key` answers and the email log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
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
    session: Session, dedupe_key: str, account_id: str | None, to_email: str, template: str
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
        )
        .on_conflict_do_nothing(index_elements=[EmailLog.dedupe_key])
        .returning(EmailLog.dedupe_key)
    ).first()
    return inserted is not None


def reclaim_failed_email(session: Session, dedupe_key: str, to_email: str) -> bool:
    """A `failed` row back to `sending`; False when the row is not `failed`."""
    reclaimed = session.execute(
        update(EmailLog)
        .where(EmailLog.dedupe_key == dedupe_key, EmailLog.status == "failed")
        .values(status="sending", to_email=to_email)
        .returning(EmailLog.dedupe_key)
    ).first()
    return reclaimed is not None


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
