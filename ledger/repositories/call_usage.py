"""A call's usage events (`call_usage_events`, unique per (call_id, event_id)) and the scan of
calls still in progress."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.models import Call, CallUsageEvent
from domain.rating import UsageEvent

# Ids per `IN (...)` lookup.
LOOKUP_CHUNK = 2000


_INSERT_NEW_EVENTS = text(
    """
    INSERT INTO call_usage_events
        (call_id, event_id, component, sku, quantities, occurred_at, batch, phase)
    SELECT :call_id, e.event_id, e.component, e.sku, e.quantities::jsonb, e.occurred_at,
           :batch, :phase
    FROM unnest(CAST(:event_ids AS text[]), CAST(:components AS text[]), CAST(:skus AS text[]),
                CAST(:quantities AS text[]), CAST(:occurred_at AS text[]))
         AS e(event_id, component, sku, quantities, occurred_at)
    ON CONFLICT (call_id, event_id) DO NOTHING
    RETURNING event_id
    """
)


def insert_new_events(
    session: Session, call_id: str, events: Sequence[UsageEvent], *, batch: str, phase: str
) -> set[str]:
    """Insert the events the call does not have yet; returns the ids actually inserted.
    One statement over arrays (`unnest`), however many events: a checkpoint after an outage
    may carry thousands, and row-by-row binding costs seconds there."""
    if not events:
        return set()
    result = session.execute(
        _INSERT_NEW_EVENTS,
        {
            "call_id": call_id,
            "batch": batch,
            "phase": phase,
            "event_ids": [event.event_id for event in events],
            "components": [event.component for event in events],
            "skus": [event.sku for event in events],
            "quantities": [json.dumps(event.quantities) for event in events],
            "occurred_at": [event.occurred_at for event in events],
        },
    )
    return set(result.scalars())


def batches_of(session: Session, call_id: str, event_ids: Sequence[str]) -> dict[str, str]:
    """event_id -> the batch that recorded it, for those of `event_ids` the call has."""
    found: dict[str, str] = {}
    for start in range(0, len(event_ids), LOOKUP_CHUNK):
        chunk = list(event_ids[start : start + LOOKUP_CHUNK])
        rows = session.execute(
            select(CallUsageEvent.event_id, CallUsageEvent.batch).where(
                CallUsageEvent.call_id == call_id, CallUsageEvent.event_id.in_(chunk)
            )
        )
        found.update({event_id: batch for event_id, batch in rows})
    return found


def active_calls_idle_since(
    session: Session, before: datetime, limit: int, call_ids: Sequence[str] | None = None
) -> list[str]:
    """Calls the ledger still has in progress whose row has not changed since `before` (of
    `call_ids` when given), longest idle first. A live call's row changes with every usage
    checkpoint, so a lost call's rises to the top however many live calls there are."""
    statement = select(Call.call_id).where(Call.status == "active", Call.updated_at < before)
    if call_ids is not None:
        statement = statement.where(Call.call_id.in_(list(call_ids)))
    return list(session.scalars(statement.order_by(Call.updated_at).limit(limit)))
