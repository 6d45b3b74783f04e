"""HTTP `Idempotency-Key` records (the `idempotency_records` table), one transaction each:
claim a key before running a request, keep a 2xx answer for replays, release a key whose
request failed. The HTTP side (api.idempotency) decides what to replay.

A claim whose request died without answering or releasing (the API process killed) would block
its key for good: after `IN_FLIGHT_LEASE` the same request may take it over. Records older than
`RETENTION` are pruned by the reconciler: a key is a retry token, not an archive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from db.models import IdempotencyRecord
from ledger.posting import utcnow
from ledger.repositories import records

IN_FLIGHT_LEASE = timedelta(minutes=2)
RETENTION = timedelta(hours=24)


def claim_key(
    session: Session,
    principal: str,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    *,
    lease: timedelta = IN_FLIGHT_LEASE,
) -> IdempotencyRecord | None:
    """Insert a placeholder; None when the caller owns the key now (new, or the same request's
    claim older than `lease` taken over), else the existing record (detached, safe to read
    after the session closes)."""
    if records.insert_idempotency_record(session, principal, key, method, path, request_hash):
        return None
    if records.take_over_idempotency_record(
        session, principal, key, request_hash, utcnow() - lease
    ):
        return None
    record = records.idempotency_record(session, principal, key)
    session.expunge(record)
    return record


def store_answer(session: Session, principal: str, key: str, status_code: int, body: Any) -> None:
    records.set_idempotency_answer(session, principal, key, status_code, body)


def release_key(session: Session, principal: str, key: str) -> None:
    """Forget a claim that never got an answer, so the request may run again."""
    records.delete_pending_idempotency_record(session, principal, key)


def prune(session: Session, *, retention: timedelta = RETENTION, limit: int = 5000) -> int:
    """Delete records older than `retention` (at most `limit` per call); returns how many."""
    return records.delete_idempotency_records_before(session, utcnow() - retention, limit)
