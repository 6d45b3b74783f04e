"""HTTP `Idempotency-Key` records (the `idempotency_records` table), one transaction each:
claim a key before running a request, keep a 2xx answer for replays, release a key whose
request failed. The HTTP side (api.idempotency) decides what to replay."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.models import IdempotencyRecord
from ledger.repositories import records


def claim_key(
    session: Session, principal: str, key: str, method: str, path: str, request_hash: str
) -> IdempotencyRecord | None:
    """Insert a placeholder; None when the caller owns the key now, else the existing record
    (detached, safe to read after the session closes)."""
    if records.insert_idempotency_record(session, principal, key, method, path, request_hash):
        return None
    record = records.idempotency_record(session, principal, key)
    session.expunge(record)
    return record


def store_answer(session: Session, principal: str, key: str, status_code: int, body: Any) -> None:
    records.set_idempotency_answer(session, principal, key, status_code, body)


def release_key(session: Session, principal: str, key: str) -> None:
    """Forget a claim that never got an answer, so the request may run again."""
    records.delete_pending_idempotency_record(session, principal, key)
