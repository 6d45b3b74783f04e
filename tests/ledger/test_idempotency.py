"""Idempotency-Key records: a claim whose request died is taken over by the same request after
its lease (not before, never by another request), and records older than 24 h are pruned."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from db.models import IdempotencyRecord
from ledger import idempotency
from tests.ledger.conftest import Ledger, uid


def claim(ledger: Ledger, scope: str, key: str, digest: str) -> IdempotencyRecord | None:
    return ledger.tx(lambda s: idempotency.claim_key(s, scope, key, "POST", "/v1/x", digest))


def age(ledger: Ledger, scope: str, by: timedelta) -> None:
    ledger.tx(
        lambda s: s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.principal == scope)
            .values(created_at=IdempotencyRecord.created_at - by)
        )
    )


def answer(ledger: Ledger, scope: str, key: str) -> None:
    ledger.tx(lambda s: idempotency.store_answer(s, scope, key, 200, None))


def exists(ledger: Ledger, scope: str, key: str) -> bool:
    with ledger.factory() as s:
        return s.get(IdempotencyRecord, (scope, key)) is not None


def test_an_abandoned_claim_is_taken_over_after_its_lease(ledger: Ledger) -> None:
    scope, key = uid("scope")[:64], uid("key")
    assert claim(ledger, scope, key, "a") is None  # ours
    in_flight = claim(ledger, scope, key, "a")
    assert in_flight is not None and in_flight.status_code is None  # the twin: 409 in progress
    age(ledger, scope, timedelta(minutes=3))
    assert claim(ledger, scope, key, "b") is not None  # another request never takes it
    assert claim(ledger, scope, key, "a") is None  # the same request does, after the lease
    assert claim(ledger, scope, key, "a") is not None  # and now holds it afresh


def test_an_answered_claim_is_never_taken_over(ledger: Ledger) -> None:
    scope, key = uid("scope")[:64], uid("key")
    assert claim(ledger, scope, key, "a") is None
    ledger.tx(lambda s: idempotency.store_answer(s, scope, key, 201, {"id": 1}))
    age(ledger, scope, timedelta(hours=1))
    replay = claim(ledger, scope, key, "a")
    assert replay is not None and replay.status_code == 201


def test_records_older_than_a_day_are_pruned(ledger: Ledger) -> None:
    old_scope, new_scope = uid("old")[:64], uid("new")[:64]
    for scope in (old_scope, new_scope):
        assert claim(ledger, scope, "k", "a") is None
        answer(ledger, scope, "k")
    age(ledger, old_scope, timedelta(hours=25))
    age(ledger, new_scope, timedelta(hours=23))
    pruned = ledger.tx(lambda s: idempotency.prune(s))
    assert pruned >= 1
    assert not exists(ledger, old_scope, "k") and exists(ledger, new_scope, "k")
