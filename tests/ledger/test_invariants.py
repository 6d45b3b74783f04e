"""The invariant checker finds each kind of corruption (on a database of its own, since these
tests break rows on purpose), stays quiet on healthy books, and its CLI exits 1 on violations."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from db.models import Account, Call, CreditLot, Hold, JournalEntry, LedgerTransaction
from ledger import refunds
from ledger.invariants import RULE_NAMES, check_ledger
from tests.ledger.conftest import Ledger, uid

ROOT = Path(__file__).resolve().parents[2]


def busy_account(ledger: Ledger) -> tuple[str, str]:
    """An account that went through most operations; returns it and a charged call id."""
    account_id = ledger.account(paid=3000, promo=500)
    charged = ledger.call(account_id)
    ledger.call(account_id, outcome="failed")
    ledger.authorize(account_id)  # one call in progress
    ledger.tx(
        lambda s: refunds.start_refund(
            s, refund_id=uid("r"), account_id=account_id, amount_paisa=200
        )
    )
    return account_id, charged.call_id


def _first_tx(s: Session, account_id: str, kind: str) -> LedgerTransaction:
    return s.scalars(
        select(LedgerTransaction).where(
            LedgerTransaction.account_id == account_id, LedgerTransaction.kind == kind
        )
    ).first()  # type: ignore[return-value]


def corrupt_paid(s: Session, account_id: str, call_id: str) -> None:
    s.execute(
        update(Account).where(Account.id == account_id).values(paid_paisa=Account.paid_paisa + 1)
    )


def corrupt_entry(s: Session, account_id: str, call_id: str) -> None:
    tx = _first_tx(s, account_id, "call_charge")
    s.execute(
        update(JournalEntry)
        .where(JournalEntry.transaction_id == tx.id, JournalEntry.book == "margin_revenue")
        .values(amount_paisa=JournalEntry.amount_paisa + 5)
    )


def corrupt_balance_after(s: Session, account_id: str, call_id: str) -> None:
    tx = _first_tx(s, account_id, "topup")
    s.execute(
        update(LedgerTransaction)
        .where(LedgerTransaction.id == tx.id)
        .values(balance_after=LedgerTransaction.balance_after - 1)
    )


def corrupt_reserved(s: Session, account_id: str, call_id: str) -> None:
    s.execute(update(Account).where(Account.id == account_id).values(reserved_paisa=0))


def corrupt_lot(s: Session, account_id: str, call_id: str) -> None:
    s.execute(
        update(CreditLot)
        .where(CreditLot.account_id == account_id, CreditLot.kind == "paid")
        .values(remaining_paisa=CreditLot.remaining_paisa - 1)
    )


def duplicate_charge(s: Session, account_id: str, call_id: str) -> None:
    tx = _first_tx(s, account_id, "call_charge")
    twin = LedgerTransaction(
        account_id=account_id,
        kind="call_charge",
        idempotency_key=uid("dup"),
        request_hash="x",
        amount_paisa=0,
        paid_delta_paisa=0,
        promo_delta_paisa=0,
        paid_balance_after=tx.paid_balance_after,
        promo_balance_after=tx.promo_balance_after,
        balance_after=tx.balance_after,
        reference=call_id,
        description="",
        details={},
    )
    s.add(twin)


def finalized_with_active_hold(s: Session, account_id: str, call_id: str) -> None:
    s.execute(update(Hold).where(Hold.reference == f"call:{call_id}").values(status="active"))


def charged_call_without_charge(s: Session, account_id: str, call_id: str) -> None:
    s.execute(update(Call).where(Call.call_id == call_id).values(transaction_id=None))
    s.execute(
        update(LedgerTransaction)
        .where(LedgerTransaction.reference == call_id)
        .values(reference="elsewhere")
    )


CORRUPTIONS: dict[str, tuple[Callable[[Session, str, str], None], set[str]]] = {
    "paid": (corrupt_paid, {"journal_equals_balance", "transactions_equal_balance"}),
    "entry": (corrupt_entry, {"journal_balanced"}),
    "balance_after": (corrupt_balance_after, {"balance_after_chain"}),
    "reserved": (corrupt_reserved, {"reserved_equals_active_holds"}),
    "lot": (corrupt_lot, {"paid_lots_equal_paid", "lot_consumption"}),
    "duplicate_charge": (duplicate_charge, {"charged_call_adds_up"}),
    "active_hold": (
        finalized_with_active_hold,
        {"finalized_call_has_no_active_hold", "reserved_equals_active_holds"},
    ),
    "missing_charge": (charged_call_without_charge, {"charged_call_adds_up"}),
}


def test_healthy_books_have_no_violations(isolated_ledger: Ledger) -> None:
    account_id, _ = busy_account(isolated_ledger)
    isolated_ledger.assert_consistent(account_id)
    with isolated_ledger.factory() as s:
        assert check_ledger(s) == []


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_found(isolated_ledger: Ledger, name: str) -> None:
    corrupt, expected_rules = CORRUPTIONS[name]
    account_id, call_id = busy_account(isolated_ledger)
    bystander, _ = busy_account(isolated_ledger)
    isolated_ledger.tx(lambda s: corrupt(s, account_id, call_id))
    found = isolated_ledger.violations(account_id)
    assert expected_rules <= {v.rule for v in found}, found
    assert all(v.account_id == account_id for v in found)
    assert all(v.rule in RULE_NAMES and v.detail for v in found)
    assert isolated_ledger.violations(bystander) == []
    # Put the books back so later tests in this module start clean: drop the account.
    isolated_ledger.tx(lambda s: _purge(s, account_id))
    with isolated_ledger.factory() as s:
        assert check_ledger(s) == []


def _purge(s: Session, account_id: str) -> None:
    for statement in (
        "DELETE FROM lot_allocations WHERE account_id = :a",
        "DELETE FROM journal_entries WHERE account_id = :a",
        "DELETE FROM holds WHERE account_id = :a",
        "DELETE FROM alert_outbox WHERE account_id = :a",
        "DELETE FROM refund_parts USING refunds"
        " WHERE refund_parts.refund_id = refunds.id AND refunds.account_id = :a",
        "DELETE FROM refunds WHERE account_id = :a",
        "DELETE FROM credit_lots WHERE account_id = :a",
        "UPDATE calls SET transaction_id = NULL WHERE account_id = :a",
        "DELETE FROM calls WHERE account_id = :a",
        "DELETE FROM ledger_transactions WHERE account_id = :a",
        "DELETE FROM accounts WHERE id = :a",
    ):
        s.execute(text(statement), {"a": account_id})


def _cli(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "ledger.invariants"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_exits_0_on_healthy_books_and_1_on_violations(
    isolated_ledger: Ledger, isolated_database_url: str
) -> None:
    busy_account(isolated_ledger)
    ok = _cli(isolated_database_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ledger OK" in ok.stdout
    account_id, call_id = busy_account(isolated_ledger)
    isolated_ledger.tx(lambda s: corrupt_paid(s, account_id, call_id))
    bad = _cli(isolated_database_url)
    assert bad.returncode == 1
    assert "journal_equals_balance" in bad.stdout and account_id in bad.stdout
    isolated_ledger.tx(lambda s: _purge(s, account_id))
