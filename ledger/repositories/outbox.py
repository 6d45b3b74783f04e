"""The low-balance alert outbox (`alert_outbox`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import AlertOutbox


def insert_alert(
    session: Session, account_id: str, dedupe_key: str, payload: dict[str, Any]
) -> None:
    session.execute(
        insert(AlertOutbox)
        .values(account_id=account_id, dedupe_key=dedupe_key, payload=payload)
        .on_conflict_do_nothing(index_elements=[AlertOutbox.dedupe_key])
    )


def undelivered_of_account(session: Session, account_id: str) -> Sequence[AlertOutbox]:
    return session.scalars(
        select(AlertOutbox)
        .where(AlertOutbox.account_id == account_id, AlertOutbox.delivered_at.is_(None))
        .order_by(AlertOutbox.id)
    ).all()


def undelivered_before(session: Session, before: datetime, limit: int) -> Sequence[AlertOutbox]:
    """Undelivered rows neither created nor last handed over since `before`, oldest first,
    locked (`SKIP LOCKED`: two sweepers never take the same row)."""
    return session.scalars(
        select(AlertOutbox)
        .where(
            AlertOutbox.delivered_at.is_(None),
            AlertOutbox.created_at < before,
            or_(AlertOutbox.last_attempt_at.is_(None), AlertOutbox.last_attempt_at < before),
        )
        .order_by(AlertOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def note_attempt(session: Session, dedupe_keys: Sequence[str], now: datetime) -> None:
    session.execute(
        update(AlertOutbox)
        .where(AlertOutbox.dedupe_key.in_(dedupe_keys))
        .values(attempts=AlertOutbox.attempts + 1, last_attempt_at=now)
    )


def set_delivered(session: Session, dedupe_key: str, now: datetime) -> bool:
    """False when there is no such undelivered row (delivered already, or a legacy alert)."""
    done = session.execute(
        update(AlertOutbox)
        .where(AlertOutbox.dedupe_key == dedupe_key, AlertOutbox.delivered_at.is_(None))
        .values(delivered_at=now)
        .returning(AlertOutbox.id)
    ).first()
    return done is not None
