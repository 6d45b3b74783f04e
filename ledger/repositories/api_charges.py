"""The SQL of the osmAPI hot path (ledger.api_requests): plain statements for
`ledger.repositories.statements`, any number of accounts and requests per statement, so a batch
of a thousand charges costs the same three statements as one.

Lists go to PostgreSQL as one text-array literal and rows as one JSON document: adapting
Python lists parameter by parameter cost the API more CPU than the rest of a charge."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ledger.repositories.statements import Statement

# What the hot path reads of an account (ledger.api_requests._Account, in this order).
ACCOUNT_COLUMNS = (
    "id, paid_paisa, promo_paisa, reserved_paisa, min_balance_paisa, alert_threshold_paisa, "
    "version, margin_rate, low_balance_armed, auto_recharge_enabled, "
    "auto_recharge_threshold_paisa, auto_recharge_amount_paisa, auto_recharge_armed"
)


# The rows a plain posting writes besides its transaction, read from the document `d`: journal
# entries (`je`), lot balances (`lots`), lot allocations (`la`); then the alert outbox
# (`alerts`). One text for every plain writer, so they cannot drift apart.
POSTING_ROWS = """
        je AS (
            INSERT INTO journal_entries (transaction_id, account_id, book, amount_paisa)
            SELECT (e->>0)::bigint, e->>1, e->>2, (e->>3)::bigint
            FROM d, jsonb_array_elements(d.j->'je') e
        ),
        lots AS (
            UPDATE credit_lots c SET remaining_paisa = (e->>1)::bigint
            FROM d, jsonb_array_elements(d.j->'lots') e WHERE c.id = (e->>0)::bigint
        ),
        la AS (
            INSERT INTO lot_allocations (transaction_id, lot_id, account_id, kind, amount_paisa)
            SELECT (e->>0)::bigint, (e->>1)::bigint, e->>2, e->>3, (e->>4)::bigint
            FROM d, jsonb_array_elements(d.j->'la') e
        ),
"""
ALERT_OUTBOX_ROWS = """
        alerts AS (
            INSERT INTO alert_outbox (account_id, dedupe_key, payload)
            SELECT e->>0, e->>1, e->2 FROM d, jsonb_array_elements(d.j->'alerts') e
            ON CONFLICT (dedupe_key) DO NOTHING
        )
"""


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal (`%s::text[]`)."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def lock_accounts(account_ids: Sequence[str]) -> Statement:
    """The accounts, locked in one order (every writer locks the account row first, so what
    the next statement reads of them cannot change until the commit)."""
    return Statement(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE",
        (text_array(account_ids),),
    )


def charge_context(
    account_ids: Sequence[str], request_ids: Sequence[str], now: datetime, count: int
) -> Statement:
    """After the locks, in one row: the requests already charged (api_requests columns), the
    version of the rate card in force, the accounts that need housekeeping (expired
    promo, stale holds), their open lots (promo before paid, oldest first), this month's charges
    (the month of the transaction's clock, as the counter's trigger files them), and `count`
    transaction ids. The lots need no lock of their own: every change to a lot is made under its
    account's lock (ledger.posting). The ids are increasing and taken under the locks, so an
    account's transactions are numbered in posting order (as balance_after chains)."""
    return Statement(
        """
        SELECT
          (SELECT COALESCE(json_agg(json_build_array(request_id, account_id, sku, input_tokens,
                    output_tokens, rate_card_version, provider_total_paisa, margin_paisa,
                    total_paisa, transaction_id, request_hash)), '[]')
             FROM api_requests WHERE request_id = ANY(%(requests)s::text[])),
          (SELECT version FROM rate_cards WHERE effective_from <= %(now)s
             ORDER BY effective_from DESC, version DESC LIMIT 1),
          (SELECT COALESCE(json_agg(account_id), '[]') FROM (
             SELECT account_id FROM credit_lots WHERE account_id = ANY(%(accounts)s::text[])
               AND kind = 'promo' AND remaining_paisa > 0 AND expires_at <= %(now)s
             UNION SELECT account_id FROM holds WHERE account_id = ANY(%(accounts)s::text[])
               AND status = 'active' AND expires_at <= %(now)s) stale),
          (SELECT COALESCE(json_agg(json_build_array(id, account_id, kind, remaining_paisa)
                    ORDER BY account_id, kind = 'paid', id), '[]')
             FROM credit_lots
             WHERE account_id = ANY(%(accounts)s::text[]) AND remaining_paisa > 0),
          (SELECT COALESCE(json_object_agg(account_id, charged_paisa), '{}')
             FROM account_month_usage WHERE account_id = ANY(%(accounts)s::text[])
               AND month = date_trunc('month', now() AT TIME ZONE 'Asia/Kolkata')::date),
          (SELECT COALESCE(json_agg(nextval(pg_get_serial_sequence('ledger_transactions', 'id'))),
                    '[]')
             FROM generate_series(1, %(count)s))
        """,
        {
            "requests": text_array(request_ids),
            "accounts": text_array(account_ids),
            "now": now,
            "count": count,
        },
    )


def read_account(account_id: str, now: datetime) -> Statement:
    """An account for a read (no lock), whether it needs housekeeping, and the rate card version
    in force: one statement, one snapshot."""
    return Statement(
        f"SELECT {ACCOUNT_COLUMNS}, "
        "EXISTS (SELECT 1 FROM credit_lots l WHERE l.account_id = a.id AND l.kind = 'promo' "
        "AND l.remaining_paisa > 0 AND l.expires_at <= %(now)s) "
        "OR EXISTS (SELECT 1 FROM holds h WHERE h.account_id = a.id AND h.status = 'active' "
        "AND h.expires_at <= %(now)s), "
        "(SELECT version FROM rate_cards WHERE effective_from <= %(now)s "
        "ORDER BY effective_from DESC, version DESC LIMIT 1) "
        "FROM accounts a WHERE a.id = %(id)s",
        {"id": account_id, "now": now},
    )


def rate_card_effective_from(version: int) -> Statement:
    return Statement("SELECT effective_from FROM rate_cards WHERE version = %s", (version,))


def rate_card_prices(version: int) -> Statement:
    return Statement(
        "SELECT sku, component, unit, price_inr FROM rate_card_prices WHERE version = %s "
        "ORDER BY sku, unit",
        (version,),
    )


def post_charges(
    *,
    transactions: Sequence[Sequence[Any]],
    entries: Sequence[Sequence[Any]],
    lots: Sequence[tuple[int, int]],
    allocations: Sequence[Sequence[Any]],
    accounts: Sequence[tuple[str, int, int, int, bool, bool]],
    requests: Sequence[Sequence[Any]],
    alerts: Sequence[tuple[str, str, dict[str, Any]]],
) -> Statement:
    """Every row of the charges in one statement: the transactions, their journal entries, the
    lots' new remainders and their allocations, the accounts' new balances, the request rows.

    transactions: (id, account_id, key, hash, amount, paid_delta, promo_delta, paid_after,
    promo_after, balance_after, reference, description, details dict); entries:
    (transaction_id, account_id, book, amount); lots: (lot_id, remaining); allocations:
    (transaction_id, lot_id or None, account_id, kind, amount); accounts: (id, paid, promo,
    version, low_balance_armed, auto_recharge_armed); requests: (request_id, account_id, sku,
    input, output, card version, provider, margin, total, transaction_id or None, hash); alerts:
    the low-balance crossings for the outbox (account_id, dedupe_key, payload)."""
    document = json.dumps(
        {
            "tx": transactions,
            "je": entries,
            "lots": lots,
            "la": allocations,
            "acc": accounts,
            "req": requests,
            "alerts": alerts,
        },
        separators=(",", ":"),
    )
    return Statement(
        """
        WITH d AS (SELECT %s::jsonb AS j),
        tx AS (
            INSERT INTO ledger_transactions (id, account_id, kind, idempotency_key, request_hash,
                amount_paisa, paid_delta_paisa, promo_delta_paisa, paid_balance_after,
                promo_balance_after, balance_after, reference, description, details)
            SELECT (e->>0)::bigint, e->>1, 'api_charge', e->>2, e->>3, (e->>4)::bigint,
                (e->>5)::bigint, (e->>6)::bigint, (e->>7)::bigint, (e->>8)::bigint,
                (e->>9)::bigint, e->>10, e->>11, e->12
            FROM d, jsonb_array_elements(d.j->'tx') e
        ),
"""
        + POSTING_ROWS
        + """
        acc AS (
            UPDATE accounts a SET paid_paisa = (e->>1)::bigint, promo_paisa = (e->>2)::bigint,
                version = (e->>3)::bigint, low_balance_armed = (e->>4)::boolean,
                auto_recharge_armed = (e->>5)::boolean
            FROM d, jsonb_array_elements(d.j->'acc') e WHERE a.id = e->>0
        ),
"""
        + ALERT_OUTBOX_ROWS
        + """
        INSERT INTO api_requests (request_id, account_id, sku, input_tokens, output_tokens,
            rate_card_version, provider_total_paisa, margin_paisa, total_paisa, transaction_id,
            request_hash)
        SELECT e->>0, e->>1, e->>2, (e->>3)::bigint, (e->>4)::bigint, (e->>5)::int,
            (e->>6)::bigint, (e->>7)::bigint, (e->>8)::bigint, (e->>9)::bigint, e->>10
        FROM d, jsonb_array_elements(d.j->'req') e
        """,
        (document,),
        fetch=False,
    )


def api_key_by_hash(key_hash: str) -> Statement:
    return Statement(
        "SELECT id, role, account_id, revoked_at FROM api_keys WHERE key_hash = %s", (key_hash,)
    )
