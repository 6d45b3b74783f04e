"""End-to-end walk through the ledger operations on real PostgreSQL."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from db.session import run_in_transaction
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import FinalizeCallRequest
from domain.rating import UsageTotals, validate_usage_event
from ledger import accounts as ledger_accounts
from ledger import balances
from ledger import calls as ledger_calls
from ledger.policy import LedgerPolicy


def test_call_lifecycle_charges_442_promo_first(
    session_factory: sessionmaker[Session], policy: LedgerPolicy
) -> None:
    account, _ = run_in_transaction(
        session_factory,
        lambda s: ledger_accounts.create_account(s, policy, name="Asha", email="asha@example.com"),
    )
    run_in_transaction(
        session_factory,
        lambda s: ledger_accounts.top_up(
            s, account_id=account.id, amount_paisa=50000, payment_reference=f"pay-{account.id}"
        ),
    )
    decision = run_in_transaction(
        session_factory,
        lambda s: ledger_calls.authorize_call(
            s, policy, call_id=f"call-{account.id}", account_id=account.id, channel="phone"
        ),
    )
    assert decision.authorized and decision.hold_paisa == 1000
    assert decision.rate_card is not None
    totals = UsageTotals()
    for raw in TYPICAL_PHONE_CALL_USAGE:
        totals.add(validate_usage_event(raw, "phone", decision.rate_card))
    request = FinalizeCallRequest(
        call_id=f"call-{account.id}", outcome="completed", usage=totals.lines, usage_event_count=4
    )
    result = run_in_transaction(session_factory, lambda s: ledger_calls.finalize_call(s, request))
    assert result.breakdown.total_paisa == 442
    again = run_in_transaction(session_factory, lambda s: ledger_calls.finalize_call(s, request))
    assert again.transaction_id == result.transaction_id
    summary = run_in_transaction(session_factory, lambda s: balances.balance_summary(s, account.id))
    assert summary.balance.promo_paisa == 5000 - 442
    assert summary.balance.paid_paisa == 50000
    assert summary.balance.reserved_paisa == 0
    assert summary.month_usage_paisa == 442
