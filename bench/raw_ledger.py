"""The ceiling: the same ledger transactions written by hand in psycopg, as lean as they go
(pipelined, prepared, no ORM, prices computed once), to measure the ledger and the API against.

- `api_charge`: one osmAPI charge — lock the account, look up the request_id, lock the open lots,
  then the transaction, its journal entries, the lots' new remainders and allocations, the
  account's balances and the request row; two round trips and the COMMIT.
- `call_authorize` + `call_capture`: a call's two ledger transactions (authorize with a hold;
  capture: the charge, the hold captured, the call finalized), the shape of ledger.calls;
- `call_checkpoint`: a running call's usage checkpoint (its events recorded, its hold raised),
  the writes of ledger.call_usage's checkpoint without the pricing.

Each leaves the books exactly as the ledger would (the run's invariant check covers them).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from domain.rating import Breakdown

Conn = psycopg.AsyncConnection[Any]
HOUSEKEEPING = (
    "SELECT EXISTS (SELECT 1 FROM credit_lots WHERE account_id = %(a)s AND kind = 'promo' "
    "AND remaining_paisa > 0 AND expires_at <= now()) OR EXISTS (SELECT 1 FROM holds "
    "WHERE account_id = %(a)s AND status = 'active' AND expires_at <= now())"
)
LOCK = "SELECT paid_paisa, promo_paisa, reserved_paisa, min_balance_paisa FROM accounts "
_NOT_QUANTITIES = {"event_id", "component", "sku", "occurred_at"}
LOTS = (
    "SELECT id, kind, remaining_paisa FROM credit_lots WHERE account_id = %s "
    "AND remaining_paisa > 0 ORDER BY kind = 'paid', id FOR UPDATE"
)


async def _next_id(conn: Conn) -> psycopg.AsyncCursor[Any]:
    """Queue the id of the transaction to post (read with the other reads: no extra trip)."""
    return await conn.execute("SELECT nextval('ledger_transactions_id_seq')")


async def _debit(
    conn: Conn,
    tx_id: int,
    account_id: str,
    paid: int,
    promo: int,
    lots: list[tuple[int, str, int]],
    b: Breakdown,
    *,
    kind: str,
    key: str,
    reference: str,
    description: str,
    details: dict[str, Any],
    reserved_delta: int = 0,
) -> int:
    """Queue the writes of one debit as transaction `tx_id`; returns it."""
    left, promo_part = b.total_paisa, 0
    takes: list[tuple[int, int]] = []
    for lot_id, lot_kind, remaining in lots:
        if left == 0:
            break
        take = min(remaining, left)
        takes.append((lot_id, take))
        left -= take
        promo_part += take if lot_kind == "promo" else 0
    paid_part = b.total_paisa - promo_part
    paid, promo = paid - paid_part, promo - promo_part
    await conn.execute(
        "INSERT INTO ledger_transactions (id, account_id, kind, idempotency_key, request_hash, "
        "amount_paisa, paid_delta_paisa, promo_delta_paisa, paid_balance_after, "
        "promo_balance_after, balance_after, reference, description, details) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        (tx_id, account_id, kind, key, "raw", -b.total_paisa, -paid_part, -promo_part, paid,
         promo, paid + promo, reference, description, json.dumps(details)),
    )  # fmt: skip
    lines = [
        ("customer_paid", -paid_part),
        ("customer_promo", -promo_part),
        ("provider_payable", b.provider_total_paisa),
        ("margin_revenue", b.margin_paisa),
    ]
    for book, amount in lines:
        if amount:
            await conn.execute(
                "INSERT INTO journal_entries (transaction_id, account_id, book, amount_paisa) "
                "VALUES (%s, %s, %s, %s)",
                (tx_id, account_id, book, amount),
            )
    allocations: list[tuple[int | None, str, int]] = [(i, "debit", t) for i, t in takes]
    if left:
        allocations.append((None, "overdraft", left))
    for lot_id, take in takes:
        await conn.execute(
            "UPDATE credit_lots SET remaining_paisa = remaining_paisa - %s WHERE id = %s",
            (take, lot_id),
        )
    for lot, allocation_kind, amount in allocations:
        await conn.execute(
            "INSERT INTO lot_allocations (transaction_id, lot_id, account_id, kind, amount_paisa)"
            " VALUES (%s, %s, %s, %s, %s)",
            (tx_id, lot, account_id, allocation_kind, amount),
        )
    await conn.execute(
        "UPDATE accounts SET paid_paisa = %s, promo_paisa = %s, version = version + 1, "
        "reserved_paisa = reserved_paisa + %s WHERE id = %s",
        (paid, promo, reserved_delta, account_id),
    )
    return tx_id


async def api_charge(
    conn: Conn, account_id: str, request_id: str, sku: str, tokens: tuple[int, int], b: Breakdown
) -> None:
    """One osmAPI charge (conn: autocommit; this opens and commits the transaction)."""
    async with conn.pipeline(), conn.transaction():
        account = await conn.execute(LOCK + "WHERE id = %s FOR UPDATE", (account_id,))
        existing = await conn.execute(
            "SELECT request_hash FROM api_requests WHERE request_id = %s", (request_id,)
        )
        lots = await conn.execute(LOTS, (account_id,))
        stale = await conn.execute(HOUSEKEEPING, {"a": account_id})
        next_id = await _next_id(conn)
        row = await account.fetchone()
        assert row is not None and not (await stale.fetchone() or (False,))[0]
        if await existing.fetchone():
            return
        tx_id = await _debit(
            conn, int((await next_id.fetchone() or (0,))[0]), account_id, row[0], row[1],
            list(await lots.fetchall()), b,
            kind="api_charge", key=f"api:{request_id}", reference=request_id,
            description=f"osmAPI request ({sku})",
            details={"breakdown": b.__dict__, "sku": sku},
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO api_requests (request_id, account_id, sku, input_tokens, output_tokens,"
            " rate_card_version, provider_total_paisa, margin_paisa, total_paisa,"
            " transaction_id, request_hash) VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, 'raw')",
            (request_id, account_id, sku, *tokens, b.provider_total_paisa, b.margin_paisa,
             b.total_paisa, tx_id),
        )  # fmt: skip


async def call_authorize(conn: Conn, account_id: str, call_id: str, hold: int) -> bool:
    """A call's authorization with its hold (ledger.calls.authorize_call's writes)."""
    now = datetime.now(UTC)
    async with conn.pipeline(), conn.transaction():
        account = await conn.execute(LOCK + "WHERE id = %s FOR UPDATE", (account_id,))
        existing = await conn.execute("SELECT 1 FROM calls WHERE call_id = %s", (call_id,))
        card = await conn.execute(
            "SELECT version FROM rate_cards WHERE effective_from <= %s "
            "ORDER BY effective_from DESC, version DESC LIMIT 1",
            (now,),
        )
        stale = await conn.execute(HOUSEKEEPING, {"a": account_id})
        row = await account.fetchone()
        version = await card.fetchone()
        assert row is not None and version is not None
        assert not (await stale.fetchone() or (False,))[0]
        if await existing.fetchone():
            return True
        paid, promo, reserved, min_balance = row
        if paid + promo - reserved < min_balance:
            raise AssertionError("the bench's accounts are never refused")
        await conn.execute(
            "INSERT INTO calls (call_id, account_id, channel, status, authorized, "
            "rate_card_version, margin_rate, hold_paisa, available_at_authorization_paisa, "
            "started_at, usage, usage_event_count, rejected_event_count, created_at, updated_at)"
            " VALUES (%s, %s, 'phone', 'active', true, %s, 0.3, %s, %s, %s, '[]', 0, 0, %s, %s)",
            (call_id, account_id, version[0], hold, paid + promo, now, now, now),
        )
        await conn.execute(
            "INSERT INTO holds (account_id, reference, amount_paisa, status, expires_at) "
            "VALUES (%s, %s, %s, 'active', %s)",
            (account_id, f"call:{call_id}", hold, now + timedelta(hours=4, minutes=15)),
        )
        await conn.execute(
            "UPDATE accounts SET reserved_paisa = reserved_paisa + %s WHERE id = %s",
            (hold, account_id),
        )
    return True


async def call_checkpoint(
    conn: Conn, call_id: str, batch: str, events: list[dict[str, Any]]
) -> None:
    """A running call's usage checkpoint: lock the account and the call's hold, record the
    events (a repeated id once), raise the hold by a paisa an event. Not priced: the bench's
    floor charges a fixed price at capture."""
    async with conn.pipeline(), conn.transaction():
        account = await conn.execute(
            "SELECT a.id FROM accounts a JOIN calls c ON c.account_id = a.id "
            "WHERE c.call_id = %s FOR UPDATE OF a",
            (call_id,),
        )
        hold = await conn.execute(
            "SELECT id FROM holds WHERE reference = %s AND status = 'active' FOR UPDATE",
            (f"call:{call_id}",),
        )
        found, held = await account.fetchone(), await hold.fetchone()
        assert found is not None and held is not None
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO call_usage_events (call_id, event_id, component, sku, quantities, "
                "occurred_at, batch, phase, recorded_at) "
                "VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, 'live', now()) ON CONFLICT DO NOTHING",
                [
                    (call_id, e["event_id"], e["component"], e["sku"],
                     json.dumps({k: str(v) for k, v in e.items() if k not in _NOT_QUANTITIES}),
                     e.get("occurred_at"), batch)
                    for e in events
                ],
            )  # fmt: skip
        raise_by = len(events)
        await conn.execute(
            "UPDATE holds SET amount_paisa = amount_paisa + %s WHERE id = %s", (raise_by, held[0])
        )
        await conn.execute(
            "UPDATE accounts SET reserved_paisa = reserved_paisa + %s WHERE id = %s",
            (raise_by, found[0]),
        )
        await conn.execute(
            "UPDATE calls SET usage_event_count = usage_event_count + %s, updated_at = now() "
            "WHERE call_id = %s",
            (len(events), call_id),
        )


async def call_capture(conn: Conn, call_id: str, b: Breakdown, usage: list[dict[str, Any]]) -> None:
    """A completed call's charge, its hold captured, the call finalized
    (ledger.calls.finalize_call's writes)."""
    now = datetime.now(UTC)
    cursor = await conn.execute("SELECT account_id FROM calls WHERE call_id = %s", (call_id,))
    found = await cursor.fetchone()
    assert found is not None
    account_id = found[0]
    async with conn.pipeline(), conn.transaction():
        account = await conn.execute(LOCK + "WHERE id = %s FOR UPDATE", (account_id,))
        call = await conn.execute(
            "SELECT status FROM calls WHERE call_id = %s FOR UPDATE", (call_id,)
        )
        lots = await conn.execute(LOTS, (account_id,))
        hold = await conn.execute(
            "SELECT id, amount_paisa FROM holds WHERE reference = %s AND status = 'active' "
            "FOR UPDATE",
            (f"call:{call_id}",),
        )
        stale = await conn.execute(HOUSEKEEPING, {"a": account_id})
        next_id = await _next_id(conn)
        row, status, held = await account.fetchone(), await call.fetchone(), await hold.fetchone()
        assert row is not None and status is not None and held is not None
        assert not (await stale.fetchone() or (False,))[0]
        if status[0] == "finalized":
            return
        tx_id = await _debit(
            conn, int((await next_id.fetchone() or (0,))[0]), account_id, row[0], row[1],
            list(await lots.fetchall()), b,
            kind="call_charge", key=f"call:{call_id}:charge", reference=call_id,
            description="Phone call (completed)",
            details={"breakdown": b.__dict__, "channel": "phone"}, reserved_delta=-held[1],
        )  # fmt: skip
        await conn.execute(
            "UPDATE holds SET status = 'captured', released_at = %s WHERE id = %s",
            (now, held[0]),
        )
        await conn.execute(
            "UPDATE calls SET status = 'finalized', outcome = 'completed', ended_at = %s, "
            "finalized_at = %s, updated_at = %s, usage = %s::jsonb, usage_event_count = %s, "
            "llm_paisa = %s, stt_paisa = %s, tts_paisa = %s, sip_paisa = %s, "
            "provider_total_paisa = %s, margin_paisa = %s, total_paisa = %s, transaction_id = %s"
            " WHERE call_id = %s",
            (now, now, now, json.dumps(usage), len(usage), b.llm_paisa, b.stt_paisa, b.tts_paisa,
             b.sip_paisa, b.provider_total_paisa, b.margin_paisa, b.total_paisa, tx_id, call_id),
        )  # fmt: skip
