"""The SQL of a running call's usage checkpoint (ledger.call_usage.checkpoint_usage): plain
statements for `ledger.repositories.statements`, two round trips however many events.

The first locks the account, then the call, then its hold (the order every call operation
uses) and reads what pricing and the hold need; the second writes the new events, the call's
totals, the hold and the account's reserved credit in one statement, which reads nothing back,
so it goes out with the transaction's COMMIT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ledger.repositories.api_charges import ACCOUNT_COLUMNS, text_array
from ledger.repositories.statements import Statement


def lock_checkpoint(call_id: str, hold_reference: str, event_ids: Sequence[str]) -> list[Statement]:
    """The call's account (no row: no such call), the call with which of `event_ids` it already
    has (event id -> batch), and its hold, each locked in that order.
    Each statement reads after the locks before it: every writer of a call, its events or its
    hold locks the account first, so nothing read here changes until the commit."""
    return [
        Statement(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts "
            "WHERE id = (SELECT account_id FROM calls WHERE call_id = %s) FOR UPDATE",
            (call_id,),
        ),
        Statement(
            """
            SELECT c.status, c.rate_card_version, c.margin_rate, c.hold_paisa, c.usage,
                c.usage_event_count,
                (SELECT COALESCE(json_object_agg(event_id, batch), '{}') FROM call_usage_events
                   WHERE call_id = c.call_id AND event_id = ANY(%(events)s::text[]))
            FROM calls c WHERE c.call_id = %(call)s FOR UPDATE
            """,
            {"call": call_id, "events": text_array(event_ids)},
        ),
        Statement(
            "SELECT id, status, amount_paisa FROM holds WHERE reference = %s FOR UPDATE",
            (hold_reference,),
        ),
    ]


def write_checkpoint(
    *,
    call_id: str,
    batch: str,
    events: Sequence[Sequence[Any]],
    usage: Sequence[dict[str, str]] | None,
    usage_event_count: int,
    now: datetime,
    hold: tuple[int, int] | None,
    account: tuple[str, int, bool | None] | None,
) -> Statement:
    """The checkpoint's rows in one statement, nothing read back.

    Under the locks of `lock_checkpoint` nobody else records the call's events, so every event
    given is new: one that is not (which the locks rule out) fails the transaction with a
    unique violation, and the retry (db.session.run_in_transaction, run_in_async_transaction)
    reads it as recorded, rather than counting it in the call's totals a second time.

    events: (event_id, component, sku, quantities dict, occurred_at or None), inserted once per
    (call, event id) with `batch`; usage: the call's new totals (None: the call row is left
    alone), with `usage_event_count` and `now` as its updated_at; hold: (id, amount) to set;
    account: (id, reserved_paisa, auto_recharge_armed) to set."""
    document: dict[str, Any] = {"call": call_id, "batch": batch, "ev": events}
    if usage is not None:
        document["usage"] = usage
        document["count"] = usage_event_count
    if hold is not None:
        document["hold"] = hold
    if account is not None:
        document["acc"] = account
    return Statement(
        """
        WITH d AS (SELECT %(doc)s::jsonb AS j),
        call_row AS (
            UPDATE calls c SET usage = d.j->'usage', usage_event_count = (d.j->>'count')::int,
                updated_at = %(now)s
            FROM d WHERE c.call_id = d.j->>'call' AND d.j->'usage' IS NOT NULL
        ),
        hold_row AS (
            UPDATE holds h SET amount_paisa = (d.j->'hold'->>1)::bigint
            FROM d WHERE h.id = (d.j->'hold'->>0)::bigint
        ),
        acc AS (
            UPDATE accounts a SET reserved_paisa = (d.j->'acc'->>1)::bigint,
                auto_recharge_armed = (d.j->'acc'->>2)::boolean
            FROM d WHERE a.id = d.j->'acc'->>0
        )
        INSERT INTO call_usage_events
            (call_id, event_id, component, sku, quantities, occurred_at, batch, phase)
        SELECT d.j->>'call', e->>0, e->>1, e->>2, e->3, e->>4, d.j->>'batch', 'live'
        FROM d, jsonb_array_elements(d.j->'ev') e
        """,
        {"doc": json.dumps(document, separators=(",", ":")), "now": now},
        fetch=False,
    )
