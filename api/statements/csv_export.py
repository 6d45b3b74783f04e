"""CSV exports of the transaction history and the calls (contract §4), streamed: rows come
from a server-side cursor (ledger.statements.export_*) and leave in chunks, so a year of calls
is never held in memory.

Safe to open in a spreadsheet: a text cell starting with `=`, `+`, `-`, `@` (or a tab or
carriage return) is a formula to Excel, LibreOffice and Google Sheets, so it gets a leading
`'` (OWASP's CSV-injection advice). Numeric columns are written as plain integers, negative
amounts included."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from api.calls.service import duration_seconds
from db.models import Call, LedgerTransaction
from domain.contracts import CallState
from domain.history import CALL_TRANSACTION_KINDS, CallFilter, TransactionFilter
from domain.periods import BILLING_TZ, Period
from ledger import statements
from ledger.posting import utcnow

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 64 * 1024
Cell = str | int | None

TRANSACTION_COLUMNS = (
    "id",
    "created_at",
    "type",
    "description",
    "amount_paisa",
    "balance_after",
    "call_id",
    "reference",
    "paid_delta_paisa",
    "promo_delta_paisa",
)
CALL_COLUMNS = (
    "call_id",
    "started_at",
    "ended_at",
    "channel",
    "outcome",
    "duration_seconds",
    "llm_paisa",
    "stt_paisa",
    "tts_paisa",
    "sip_paisa",
    "provider_total_paisa",
    "margin_paisa",
    "total_paisa",
    "status",
    "rate_card_version",
    "hangup_reason",
)


def safe_text(value: str | None) -> str:
    """A text cell a spreadsheet will show as text, never evaluate."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def local_time(moment: datetime | None) -> str:
    """ISO 8601 in Asia/Kolkata with its offset, e.g. 2026-11-28T15:30:00.123456+05:30."""
    return moment.astimezone(BILLING_TZ).isoformat() if moment is not None else ""


def transaction_cells(tx: LedgerTransaction) -> list[Cell]:
    call_id = tx.reference if tx.kind in CALL_TRANSACTION_KINDS else None
    return [
        tx.id,
        local_time(tx.created_at),
        safe_text(tx.kind),
        safe_text(tx.description),
        tx.amount_paisa,
        tx.balance_after,
        safe_text(call_id),
        safe_text(None if call_id else tx.reference),
        tx.paid_delta_paisa,
        tx.promo_delta_paisa,
    ]


def call_cells(call: Call, now: datetime) -> list[Cell]:
    """An active call's money columns are empty: its charge is not known yet."""
    final = call.status == CallState.FINALIZED
    money: list[Cell] = [
        (getattr(call, f"{name}_paisa") or 0) if final else None
        for name in ("llm", "stt", "tts", "sip", "provider_total", "margin", "total")
    ]
    return [
        safe_text(call.call_id),
        local_time(call.started_at or call.created_at),
        local_time(call.ended_at),
        safe_text(call.channel),
        safe_text(call.outcome),
        duration_seconds(call, now),
        *money,
        safe_text(call.status),
        call.rate_card_version,
        safe_text(call.hangup_reason),
    ]


def _stream(
    factory: sessionmaker[Session],
    columns: Sequence[str],
    rows: Callable[[Session], Iterator[list[Cell]]],
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    with factory() as session:
        for cells in rows(session):
            writer.writerow(cells)
            if buffer.tell() >= CHUNK_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()


def transactions_csv(
    factory: sessionmaker[Session], account_id: str, filters: TransactionFilter
) -> Iterator[bytes]:
    """Oldest first: each row's balance_after is the previous one's plus its amount."""
    return _stream(
        factory,
        TRANSACTION_COLUMNS,
        lambda s: (
            transaction_cells(tx) for tx in statements.export_transactions(s, account_id, filters)
        ),
    )


def calls_csv(
    factory: sessionmaker[Session], account_id: str, filters: CallFilter
) -> Iterator[bytes]:
    now = utcnow()
    return _stream(
        factory,
        CALL_COLUMNS,
        lambda s: (call_cells(c, now) for c in statements.export_calls(s, account_id, filters)),
    )


def filename(kind: str, account_id: str, period: Period) -> str:
    """e.g. osmtalk-calls-acc_1f2e-2026-11-01-to-2026-11-30.csv"""
    first = period.start.astimezone(BILLING_TZ).date().isoformat() if period.start else "start"
    last = (
        (period.end.astimezone(BILLING_TZ) - timedelta(days=1)).date().isoformat()
        if period.end
        else "now"
    )
    return f"osmtalk-{kind}-{account_id}-{first}-to-{last}.csv"
