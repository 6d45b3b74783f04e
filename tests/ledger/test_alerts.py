"""The low-balance alert outbox: a crossing is written by the balance change that caused it, in
its transaction, once per crossing (the armed flag on the account row), re-armed by credits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AlertOutbox
from db.session import run_in_transaction
from domain.contracts import low_balance_alert_key
from ledger import accounts as ledger_accounts
from ledger import alerts, api_requests
from tests.ledger.conftest import Ledger, uid

TYPICAL_CALL = 442


def outbox(ledger: Ledger, account_id: str) -> list[AlertOutbox]:
    with ledger.factory() as s:
        return list(
            s.scalars(
                select(AlertOutbox)
                .where(AlertOutbox.account_id == account_id)
                .order_by(AlertOutbox.id)
            )
        )


def api_charge(session: Session, account_id: str, tokens: int = 1_000_000) -> None:
    """₹16.25 (gpt-4o-mini input tokens + 30%)."""
    api_requests.charge_api_usage(
        session,
        request_id=uid("req"),
        account_id=account_id,
        sku="openai/gpt-4o-mini",
        input_tokens=tokens,
        output_tokens=0,
    )


def test_crossing_is_written_with_the_charge_once_and_a_top_up_rearms(ledger: Ledger) -> None:
    account_id = ledger.account(paid=1500, promo=0)  # threshold = min balance = ₹10
    ledger.call(account_id)
    assert ledger.account_row(account_id).paid_paisa == 1500 - TYPICAL_CALL
    assert outbox(ledger, account_id) == [] and ledger.account_row(account_id).low_balance_armed

    crossing = ledger.call(account_id)  # 616 < 1000
    assert crossing.balance is not None and crossing.balance.available_paisa == 616
    [row] = outbox(ledger, account_id)
    assert row.dedupe_key == low_balance_alert_key(account_id, crossing.balance.version)
    assert row.payload["available_paisa"] == 616 and row.payload["threshold_paisa"] == 1000
    assert row.delivered_at is None
    account = ledger.account_row(account_id)
    assert account.version == crossing.balance.version and not account.low_balance_armed
    with ledger.factory() as s:  # what the caller reads right after its commit
        [alert] = alerts.undelivered_alerts(s, account_id)
    assert alert.dedupe_key == row.dedupe_key and alert.crossing_version == account.version

    ledger.tx(lambda s: api_charge(s, account_id, 100_000))  # deeper below: no second crossing
    assert len(outbox(ledger, account_id)) == 1

    ledger.top_up(account_id, 5000)  # back above: re-armed, nothing to say
    assert ledger.account_row(account_id).low_balance_armed
    assert len(outbox(ledger, account_id)) == 1
    while ledger.balance(account_id).balance.available_paisa >= 1000:
        ledger.call(account_id)
    assert len(outbox(ledger, account_id)) == 2


def test_a_rolled_back_charge_records_no_crossing(ledger: Ledger) -> None:
    account_id = ledger.account(paid=2000, promo=0)

    def charge_then_fail(session: Session) -> None:
        api_charge(session, account_id)
        assert session.scalars(
            select(AlertOutbox).where(AlertOutbox.account_id == account_id)
        ).all(), "the crossing is in the charge's transaction"
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        run_in_transaction(ledger.factory, charge_then_fail)
    assert outbox(ledger, account_id) == []
    assert ledger.account_row(account_id).low_balance_armed
    assert ledger.account_row(account_id).paid_paisa == 2000


def test_a_threshold_raised_above_the_balance_is_a_crossing(ledger: Ledger) -> None:
    account_id = ledger.account(paid=3000, promo=0)
    ledger.tx(lambda s: ledger_accounts.set_alert_threshold(s, account_id, 2000))
    assert outbox(ledger, account_id) == []
    ledger.tx(lambda s: ledger_accounts.set_alert_threshold(s, account_id, 5000))
    [row] = outbox(ledger, account_id)
    assert row.payload["threshold_paisa"] == 5000 and row.payload["available_paisa"] == 3000
    ledger.tx(lambda s: ledger_accounts.set_alert_threshold(s, account_id, 5000))  # again
    assert len(outbox(ledger, account_id)) == 1
    ledger.tx(lambda s: ledger_accounts.set_alert_threshold(s, account_id, None))  # ₹10: re-arm
    assert ledger.account_row(account_id).low_balance_armed
    # Raised again with no balance change in between: a second crossing, its own alert.
    ledger.tx(lambda s: ledger_accounts.set_alert_threshold(s, account_id, 5000))
    first, second = outbox(ledger, account_id)
    assert first.dedupe_key != second.dedupe_key


def test_concurrent_charges_across_the_threshold_record_one_crossing(ledger: Ledger) -> None:
    account_id = ledger.account(paid=10_000, promo=0)

    def charge(_: int) -> None:
        run_in_transaction(ledger.factory, lambda s: api_charge(s, account_id))

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(charge, range(6)))  # 6 × 1625 = 9750: below ₹10 at the 6th
    assert ledger.account_row(account_id).paid_paisa == 250
    [row] = outbox(ledger, account_id)
    assert row.payload["available_paisa"] == 250
    ledger.assert_consistent(account_id)
