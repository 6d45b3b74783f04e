"""ledger.statements and ledger.live on the real database: exports stream from a server-side
cursor, statements add up for any period, settings change only what is sent, and commits
notify the change feed."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.models import Call, LedgerTransaction
from domain.history import CallFilter, TransactionFilter
from domain.periods import Month, Period
from ledger import accounts, api_keys, statements
from ledger.errors import NotFound, ValidationFailed
from ledger.live import Change, changes, parse
from ledger.posting import utcnow
from tests.ledger.conftest import Ledger


def test_exports_stream_from_a_server_side_cursor(ledger: Ledger) -> None:
    account_id = ledger.account(paid=500_000)
    for _ in range(3):
        ledger.call(account_id)
    with ledger.factory() as session:
        rows = statements.export_transactions(session, account_id, TransactionFilter())
        first = next(rows)
        assert isinstance(first, LedgerTransaction) and first.kind == "promo_grant"
        # While rows are being read, PostgreSQL holds an open cursor for them: the rest is
        # fetched batch by batch, never loaded at once.
        open_cursors = session.execute(text("SELECT count(*) FROM pg_cursors")).scalar_one()
        assert open_cursors >= 1
        assert [tx.kind for tx in rows] == ["topup", "call_charge", "call_charge", "call_charge"]
        calls = statements.export_calls(session, account_id, CallFilter())
        assert isinstance(next(calls), Call)
        assert session.execute(text("SELECT count(*) FROM pg_cursors")).scalar_one() >= 1
        assert len(list(calls)) == 2


def test_exports_and_statements_of_an_unknown_account_are_not_found(ledger: Ledger) -> None:
    with ledger.factory() as session:
        for work in (
            lambda: statements.export_transactions(session, "acc_nope", TransactionFilter()),
            lambda: statements.export_calls(session, "acc_nope", CallFilter()),
            lambda: statements.statement(session, "acc_nope", Period()),
            lambda: statements.usage_summary(session, "acc_nope", Period()),
        ):
            with pytest.raises(NotFound):
                work()


def test_a_statement_adds_up_to_the_balance(ledger: Ledger) -> None:
    account_id = ledger.account(paid=100_000)
    ledger.call(account_id)
    ledger.call(account_id, outcome="failed")
    found = ledger.tx(lambda s: statements.statement(s, account_id, Month.of(utcnow()).period()))
    assert found.opening_balance_paisa == 0
    assert found.credits_paisa == 105_000
    assert found.debits_paisa == 442
    assert found.closing_balance_paisa == ledger.balance(account_id).balance.available_paisa
    everything = ledger.tx(lambda s: statements.statement(s, account_id, Period()))
    assert everything.closing_balance_paisa == found.closing_balance_paisa
    assert {line.kind: line.count for line in found.lines} == {
        "call_charge": 1,
        "promo_grant": 1,
        "topup": 1,
    }


def test_update_account_changes_only_what_is_sent(ledger: Ledger) -> None:
    account_id = ledger.account()

    def update(changes: dict[str, object]) -> tuple[str, str, object, int | None]:
        def work(session: Session) -> tuple[str, str, object, int | None]:
            account, snap = accounts.update_account(session, account_id, changes)
            assert snap.alert_threshold_paisa == (
                account.alert_threshold_paisa
                if account.alert_threshold_paisa is not None
                else account.min_balance_paisa
            )
            return account.name, account.email, account.margin_rate, account.alert_threshold_paisa

        return ledger.tx(work)

    assert update({"alert_threshold_paisa": 50_000})[3] == 50_000
    name, email, rate, threshold = update({"name": " Renamed ", "margin_rate": "0.25"})
    assert (name, email, rate, threshold) == (
        "Renamed",
        "test@example.com",
        Decimal("0.25"),
        50_000,
    )
    assert update({"alert_threshold_paisa": None, "margin_rate": None})[2:] == (None, None)
    bad_changes: list[dict[str, object]] = [
        {"alert_threshold_paisa": -1},
        {"alert_threshold_paisa": 10_00_000_01},
        {"alert_threshold_paisa": 1.5},
        {"alert_threshold_paisa": True},
        {"name": ""},
        {"email": "nope"},
        {"margin_rate": "-1"},
        {"auto_recharge": {}},
    ]
    for bad in bad_changes:
        with pytest.raises(ValidationFailed):
            update(bad)
    assert update({})[:2] == ("Renamed", "test@example.com")


def test_change_payloads() -> None:
    assert parse("a:acc_1") == Change(account_id="acc_1")
    assert parse("k:key_1") == Change(key_id="key_1")
    assert parse("x:1") is None and parse("a:") is None
    assert Change().resync


async def test_commits_notify_the_change_feed(ledger: Ledger, database_url: str) -> None:
    account_id = ledger.account()
    _, secret = ledger.tx(
        lambda s: api_keys.create_api_key(s, role="customer", account_id=account_id)
    )
    key_id = ledger.tx(lambda s: api_keys.resolve_api_key(s, secret)).id  # type: ignore[union-attr]
    seen: list[Change] = []
    feed = changes(database_url)

    async def read(count: int) -> None:
        while len(seen) < count:
            seen.append(await anext(feed))

    await asyncio.wait_for(read(1), 10)
    assert seen[0].resync  # connected: the first thing a listener hears
    ledger.top_up(account_id, 1000)  # the account row changes
    ledger.call(account_id)  # a call row (twice) and the account row, in two transactions
    ledger.tx(lambda s: api_keys.revoke_api_key(s, key_id))
    await asyncio.wait_for(read(5), 10)
    mine = [c for c in seen[1:] if c.account_id == account_id or c.key_id == key_id]
    assert mine[:3] == [Change(account_id=account_id)] * 3
    assert Change(key_id=key_id) in seen
    await feed.aclose()
