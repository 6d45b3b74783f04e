"""The SQL of a call's ledger transactions on their hot path (ledger.calls): authorize with a
hold, finalize (usage recorded, the charge, the hold captured or voided) and void, as plain
statements for `ledger.repositories.statements`: the lock, one read of everything after it, one
write. Rows of the write travel as one JSON document (ledger.repositories.api_charges)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.repositories.api_charges import (
    ACCOUNT_COLUMNS,
    ALERT_OUTBOX_ROWS,
    POSTING_ROWS,
    text_array,
)
from ledger.repositories.statements import Statement

# What the hot path reads of a call row (ledger.calls._CallRow, in this order).
CALL_COLUMNS = (
    "c.call_id, c.account_id, c.channel, c.status, c.authorized, c.refusal_reason, c.outcome, "
    "c.hangup_reason, c.ended_at, c.rejected_event_count, c.rate_card_version, c.margin_rate, "
    "c.hold_paisa, c.available_at_authorization_paisa, c.usage, c.usage_event_count"
)

# Whether the account needs housekeeping (expired promo, a stale hold): `%(now)s`, `a` the
# account's id expression.
_NEEDS_HOUSEKEEPING = """
    EXISTS (SELECT 1 FROM credit_lots l WHERE l.account_id = {a} AND l.kind = 'promo'
            AND l.remaining_paisa > 0 AND l.expires_at <= %(now)s)
    OR EXISTS (SELECT 1 FROM holds h WHERE h.account_id = {a} AND h.status = 'active'
               AND h.expires_at <= %(now)s)
"""
_CARD_IN_FORCE = """
    (SELECT version FROM rate_cards WHERE effective_from <= %(now)s
     ORDER BY effective_from DESC, version DESC LIMIT 1)
"""


def lock_account(account_id: str) -> Statement:
    """The account row, locked: the first step of every write."""
    return Statement(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %s FOR UPDATE", (account_id,)
    )


def authorize_context(account_id: str, call_id: str, now: datetime) -> Statement:
    """After the account's lock, in one row: the call if it exists (CALL_COLUMNS, or NULLs),
    the rate card version in force, and whether the account needs housekeeping."""
    return Statement(
        f"""
        SELECT {CALL_COLUMNS}, {_CARD_IN_FORCE},
          {_NEEDS_HOUSEKEEPING.format(a="%(account)s")}
        FROM (SELECT 1) one LEFT JOIN calls c ON c.call_id = %(call)s
        """,
        {"account": account_id, "call": call_id, "now": now},
    )


def insert_call(
    *,
    call_id: str,
    account_id: str,
    channel: str,
    authorized: bool,
    refusal_reason: str | None,
    outcome: str | None,
    rate_card_version: int,
    margin_rate: Decimal,
    hold_paisa: int,
    available_paisa: int,
    started_at: datetime,
    now: datetime,
    hold_expires_at: datetime,
) -> Statement:
    """A new call row; an authorized call also gets its hold, reserved on the account. A
    refused one is finalized at once with a zero breakdown."""
    return Statement(
        """
        WITH c AS (
            INSERT INTO calls (call_id, account_id, channel, status, authorized, refusal_reason,
                outcome, rate_card_version, margin_rate, hold_paisa,
                available_at_authorization_paisa, started_at, finalized_at, usage,
                usage_event_count, rejected_event_count, llm_paisa, stt_paisa, tts_paisa,
                sip_paisa, provider_total_paisa, margin_paisa, total_paisa, created_at,
                updated_at)
            VALUES (%(call)s, %(account)s, %(channel)s,
                CASE WHEN %(authorized)s THEN 'active' ELSE 'finalized' END, %(authorized)s,
                %(reason)s, %(outcome)s, %(card)s, %(margin)s, %(hold)s, %(available)s,
                %(started)s, CASE WHEN %(authorized)s THEN NULL ELSE %(now)s END, '[]', 0, 0,
                %(zero)s, %(zero)s, %(zero)s, %(zero)s, %(zero)s, %(zero)s, %(zero)s,
                %(now)s, %(now)s)
        ),
        h AS (
            INSERT INTO holds (account_id, reference, amount_paisa, status, expires_at)
            SELECT %(account)s, %(reference)s, %(hold)s, 'active', %(expires)s
            WHERE %(authorized)s
        )
        UPDATE accounts SET reserved_paisa = reserved_paisa + %(hold)s
        WHERE id = %(account)s AND %(authorized)s
        """,
        {
            "call": call_id,
            "account": account_id,
            "channel": channel,
            "authorized": authorized,
            "reason": refusal_reason,
            "outcome": outcome,
            "card": rate_card_version,
            "margin": margin_rate,
            "hold": hold_paisa,
            "available": available_paisa,
            "started": started_at,
            "now": now,
            "zero": None if authorized else 0,
            "reference": f"call:{call_id}",
            "expires": hold_expires_at,
        },
        fetch=False,
    )


def lock_call_account(call_id: str) -> Statement:
    """The account of a call, locked (no row: no such call). A call's account never changes,
    so reading it unlocked first is safe; the call's row is read after this lock."""
    return Statement(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts "
        "WHERE id = (SELECT account_id FROM calls WHERE call_id = %s) FOR UPDATE",
        (call_id,),
    )


def finalize_context(
    call_id: str, event_ids: Sequence[str], now: datetime, *, transaction_id: bool
) -> Statement:
    """After the account's lock, in one row: the call (CALL_COLUMNS, locked), which of
    `event_ids` it has already and from which batch (event id → batch), its hold (id, status,
    amount; NULL: none), whether the account needs housekeeping, the account's open lots
    (id, kind, remaining; promo before paid, oldest first) and, with `transaction_id`, the id
    of the transaction to post. Every change to these rows is made under the account's lock
    (ledger.posting, ledger.call_usage), so this statement's snapshot is the state the write
    builds on; the id is taken under the lock (an account's transactions number in posting
    order)."""
    return Statement(
        f"""
        SELECT {CALL_COLUMNS},
          (SELECT COALESCE(json_object_agg(e.event_id, e.batch), '{{}}')
             FROM call_usage_events e
             WHERE e.call_id = c.call_id AND e.event_id = ANY(%(events)s::text[])),
          (SELECT json_build_array(h.id, h.status, h.amount_paisa) FROM holds h
             WHERE h.reference = 'call:' || c.call_id),
          {_NEEDS_HOUSEKEEPING.format(a="c.account_id")},
          (SELECT COALESCE(json_agg(json_build_array(l.id, l.kind, l.remaining_paisa)
                    ORDER BY l.kind = 'paid', l.id), '[]')
             FROM credit_lots l WHERE l.account_id = c.account_id AND l.remaining_paisa > 0),
          CASE WHEN %(take_id)s
            THEN nextval(pg_get_serial_sequence('ledger_transactions', 'id')) END
        FROM calls c WHERE c.call_id = %(call)s FOR UPDATE OF c
        """,
        {
            "call": call_id,
            "events": text_array(event_ids),
            "now": now,
            "take_id": transaction_id,
        },
    )


def post_call_end(
    *,
    call: Sequence[Any],
    account: Sequence[Any],
    hold: Sequence[Any] | None,
    events: Sequence[Sequence[Any]],
    batch: str,
    transaction: Sequence[Any] | None,
    entries: Sequence[Sequence[Any]],
    lots: Sequence[tuple[int, int]],
    allocations: Sequence[Sequence[Any]],
    alerts: Sequence[tuple[str, str, dict[str, Any]]],
) -> Statement:
    """Every row of a call's end in one statement: the usage events it recorded, its charge
    (the transaction, journal entries, lots' new remainders, allocations), the account, the
    hold, the call row and the alert outbox.

    call: (call_id, status, authorized, refusal_reason, outcome, hangup_reason, ended_at,
    finalized_at, updated_at, rejected_event_count, usage list, usage_event_count, llm, stt,
    tts, sip, provider_total, margin, total, transaction_id); account: (id, paid, promo,
    reserved, version, low_balance_armed, auto_recharge_armed); hold: (id, status,
    released_at); events: (event_id, component, sku, quantities dict, occurred_at), recorded
    in `batch` as live usage; transaction: (id, account_id, kind, key, hash, amount,
    paid_delta, promo_delta, paid_after, promo_after, balance_after, reference, description,
    details dict); entries, lots, allocations, alerts: as in api_charges.post_charges."""
    document = json.dumps(
        {
            "call": call,
            "acc": account,
            "hold": hold,
            "ev": events,
            "tx": [transaction] if transaction is not None else [],
            "je": entries,
            "lots": lots,
            "la": allocations,
            "alerts": alerts,
        },
        separators=(",", ":"),
        default=str,  # datetimes (ISO), Decimal quantities are strings already
    )
    return Statement(
        """
        WITH d AS (SELECT %(doc)s::jsonb AS j),
        ev AS (
            INSERT INTO call_usage_events
                (call_id, event_id, component, sku, quantities, occurred_at, batch, phase)
            SELECT d.j->'call'->>0, e->>0, e->>1, e->>2, e->3, e->>4, %(batch)s, 'live'
            FROM d, jsonb_array_elements(d.j->'ev') e
        ),
        tx AS (
            INSERT INTO ledger_transactions (id, account_id, kind, idempotency_key, request_hash,
                amount_paisa, paid_delta_paisa, promo_delta_paisa, paid_balance_after,
                promo_balance_after, balance_after, reference, description, details)
            SELECT (e->>0)::bigint, e->>1, e->>2, e->>3, e->>4, (e->>5)::bigint,
                (e->>6)::bigint, (e->>7)::bigint, (e->>8)::bigint, (e->>9)::bigint,
                (e->>10)::bigint, e->>11, e->>12, e->13
            FROM d, jsonb_array_elements(d.j->'tx') e
            RETURNING id
        ),
"""
        + POSTING_ROWS
        + """
        acc AS (
            UPDATE accounts a SET paid_paisa = (e->>1)::bigint, promo_paisa = (e->>2)::bigint,
                reserved_paisa = (e->>3)::bigint, version = (e->>4)::bigint,
                low_balance_armed = (e->>5)::boolean, auto_recharge_armed = (e->>6)::boolean
            FROM d, LATERAL (SELECT d.j->'acc' AS e) x WHERE a.id = e->>0
        ),
        hold AS (
            UPDATE holds h SET status = e->>1, released_at = (e->>2)::timestamptz
            FROM d, LATERAL (SELECT d.j->'hold' AS e) x
            WHERE jsonb_typeof(e) = 'array' AND h.id = (e->>0)::bigint
        ),
"""
        + ALERT_OUTBOX_ROWS
        + """
        UPDATE calls c SET status = e->>1, authorized = (e->>2)::boolean,
            refusal_reason = e->>3, outcome = e->>4, hangup_reason = e->>5,
            ended_at = (e->>6)::timestamptz, finalized_at = (e->>7)::timestamptz,
            updated_at = (e->>8)::timestamptz, rejected_event_count = (e->>9)::int,
            usage = e->10, usage_event_count = (e->>11)::int, llm_paisa = (e->>12)::bigint,
            stt_paisa = (e->>13)::bigint, tts_paisa = (e->>14)::bigint,
            sip_paisa = (e->>15)::bigint, provider_total_paisa = (e->>16)::bigint,
            margin_paisa = (e->>17)::bigint, total_paisa = (e->>18)::bigint,
            transaction_id = (SELECT id FROM tx)
        FROM d, LATERAL (SELECT d.j->'call' AS e) x
        WHERE c.call_id = e->>0
        """,
        {"doc": document, "batch": batch},
        fetch=False,
    )
