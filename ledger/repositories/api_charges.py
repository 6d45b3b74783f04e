"""The SQL of the osmAPI hot path (ledger.api_requests): plain statements for
`ledger.repositories.statements`, several accounts and requests per statement (arrays), so a
batch of a thousand charges costs the same few round trips as one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ledger.repositories.statements import Statement


def lock_accounts(account_ids: Sequence[str]) -> Statement:
    """The accounts, locked in one order (every writer locks the account row first)."""
    return Statement(
        "SELECT id, paid_paisa, promo_paisa, reserved_paisa, min_balance_paisa, "
        "alert_threshold_paisa, version, margin_rate FROM accounts "
        "WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        (list(account_ids),),
    )


def read_account(account_id: str, now: datetime) -> Statement:
    """An account for a read (no lock), whether it needs housekeeping, and the rate card version
    in force: one statement, one snapshot."""
    return Statement(
        "SELECT a.id, a.paid_paisa, a.promo_paisa, a.reserved_paisa, a.min_balance_paisa, "
        "a.alert_threshold_paisa, a.version, a.margin_rate, "
        "EXISTS (SELECT 1 FROM credit_lots l WHERE l.account_id = a.id AND l.kind = 'promo' "
        "AND l.remaining_paisa > 0 AND l.expires_at <= %(now)s) "
        "OR EXISTS (SELECT 1 FROM holds h WHERE h.account_id = a.id AND h.status = 'active' "
        "AND h.expires_at <= %(now)s), "
        "(SELECT version FROM rate_cards WHERE effective_from <= %(now)s "
        "ORDER BY effective_from DESC, version DESC LIMIT 1) "
        "FROM accounts a WHERE a.id = %(id)s",
        {"id": account_id, "now": now},
    )


def requests_by_id(request_ids: Sequence[str]) -> Statement:
    return Statement(
        "SELECT request_id, account_id, sku, input_tokens, output_tokens, rate_card_version, "
        "provider_total_paisa, margin_paisa, total_paisa, transaction_id, request_hash "
        "FROM api_requests WHERE request_id = ANY(%s)",
        (list(request_ids),),
    )


def rate_card_in_force(now: datetime) -> Statement:
    return Statement(
        "SELECT version, effective_from FROM rate_cards WHERE effective_from <= %s "
        "ORDER BY effective_from DESC, version DESC LIMIT 1",
        (now,),
    )


def rate_card_prices(version: int) -> Statement:
    return Statement(
        "SELECT sku, component, unit, price_inr FROM rate_card_prices WHERE version = %s "
        "ORDER BY sku, unit",
        (version,),
    )


def open_lots(account_ids: Sequence[str]) -> Statement:
    """Lots with credit left, promo before paid, oldest first, locked (after the accounts)."""
    return Statement(
        "SELECT id, account_id, kind, remaining_paisa FROM credit_lots "
        "WHERE account_id = ANY(%s) AND remaining_paisa > 0 "
        "ORDER BY account_id, kind = 'paid', id FOR UPDATE",
        (list(account_ids),),
    )


def accounts_needing_housekeeping(account_ids: Sequence[str], now: datetime) -> Statement:
    """Accounts with an expired promo lot or a stale hold (ledger.posting.housekeeping)."""
    return Statement(
        "SELECT account_id FROM credit_lots WHERE account_id = ANY(%(ids)s) AND kind = 'promo' "
        "AND remaining_paisa > 0 AND expires_at <= %(now)s "
        "UNION SELECT account_id FROM holds WHERE account_id = ANY(%(ids)s) "
        "AND status = 'active' AND expires_at <= %(now)s",
        {"ids": list(account_ids), "now": now},
    )


def month_usage(account_ids: Sequence[str]) -> Statement:
    """This month's charges so far (the month of the transaction's own clock, as the counter's
    trigger files them)."""
    return Statement(
        "SELECT account_id, charged_paisa FROM account_month_usage "
        "WHERE account_id = ANY(%s) "
        "AND month = date_trunc('month', now() AT TIME ZONE 'Asia/Kolkata')::date",
        (list(account_ids),),
    )


def reserve_transaction_ids(count: int) -> Statement:
    """Ids for the transactions about to be posted, increasing, taken after the account locks
    (so an account's transactions are numbered in posting order, as balance_after chains)."""
    return Statement(
        "SELECT nextval(pg_get_serial_sequence('ledger_transactions', 'id')) "
        "FROM generate_series(1, %s)",
        (count,),
    )


def post_charges(
    *,
    transactions: Sequence[Sequence[Any]],
    entries: Sequence[Sequence[Any]],
    lots: Sequence[tuple[int, int]],
    allocations: Sequence[Sequence[Any]],
    accounts: Sequence[tuple[str, int, int, int]],
    requests: Sequence[Sequence[Any]],
) -> Statement:
    """Every row of the charges in one statement: the transactions, their journal entries, the
    lots' new remainders and their allocations, the accounts' new balances, the request rows.

    transactions: (id, account_id, key, hash, amount, paid_delta, promo_delta, paid_after,
    promo_after, balance_after, reference, description, details dict); entries:
    (transaction_id, account_id, book, amount); lots: (lot_id, remaining); allocations:
    (transaction_id, lot_id or None, account_id, kind, amount); accounts: (id, paid, promo,
    version); requests: (request_id, account_id, sku, input, output, card version, provider,
    margin, total, transaction_id or None, hash)."""

    def cols(rows: Sequence[Sequence[Any]], count: int) -> list[list[Any]]:
        return [[row[i] for row in rows] for i in range(count)]

    tx = cols(transactions, 13)
    tx[12] = [json.dumps(details, separators=(",", ":")) for details in tx[12]]
    return Statement(
        """
        WITH tx AS (
            INSERT INTO ledger_transactions (id, account_id, kind, idempotency_key, request_hash,
                amount_paisa, paid_delta_paisa, promo_delta_paisa, paid_balance_after,
                promo_balance_after, balance_after, reference, description, details)
            SELECT t.id, t.account_id, 'api_charge', t.key, t.hash, t.amount, t.paid_delta,
                t.promo_delta, t.paid_after, t.promo_after, t.balance_after, t.reference,
                t.description, t.details::jsonb
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[],
                %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[],
                %s::text[], %s::text[])
                AS t(id, account_id, key, hash, amount, paid_delta, promo_delta, paid_after,
                     promo_after, balance_after, reference, description, details)
        ),
        je AS (
            INSERT INTO journal_entries (transaction_id, account_id, book, amount_paisa)
            SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[])
        ),
        lots AS (
            UPDATE credit_lots c SET remaining_paisa = u.remaining
            FROM unnest(%s::bigint[], %s::bigint[]) AS u(id, remaining) WHERE c.id = u.id
        ),
        la AS (
            INSERT INTO lot_allocations (transaction_id, lot_id, account_id, kind, amount_paisa)
            SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::bigint[])
        ),
        acc AS (
            UPDATE accounts a SET paid_paisa = u.paid, promo_paisa = u.promo, version = u.version
            FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[])
                AS u(id, paid, promo, version)
            WHERE a.id = u.id
        )
        INSERT INTO api_requests (request_id, account_id, sku, input_tokens, output_tokens,
            rate_card_version, provider_total_paisa, margin_paisa, total_paisa, transaction_id,
            request_hash)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],
            %s::int[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[])
        """,
        (
            *tx,
            *cols(entries, 4),
            *cols(lots, 2),
            *cols(allocations, 5),
            *cols(accounts, 4),
            *cols(requests, 11),
        ),
        fetch=False,
    )


def api_key_by_hash(key_hash: str) -> Statement:
    return Statement(
        "SELECT id, role, account_id, revoked_at FROM api_keys WHERE key_hash = %s", (key_hash,)
    )
