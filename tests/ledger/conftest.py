"""Helpers for the ledger tests: a thin driver over the ledger modules on the real database, and an
isolated database for tests that change global state (rate cards) or corrupt rows on purpose."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import upgrade
from db.models import Account, Hold, LedgerTransaction
from db.session import get_engine, get_sessionmaker, run_in_transaction
from dev.postgres import create_scratch_database, drop_database
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.ledger_types import AuthorizeDecision, FinalizeCallRequest, FinalizedCall
from domain.rating import UsageTotals, validate_usage_event
from ledger import accounts as ledger_accounts
from ledger import balances, coupons, rate_cards
from ledger import calls as ledger_calls
from ledger.invariants import Violation, check_ledger
from ledger.policy import LedgerPolicy

T = TypeVar("T")


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Ledger:
    """Each method is one committed ledger transaction, as the activities and the API run them."""

    def __init__(self, factory: sessionmaker[Session], policy: LedgerPolicy) -> None:
        self.factory = factory
        self.policy = policy

    def tx(self, work: Callable[[Session], T]) -> T:
        return run_in_transaction(self.factory, work)

    def account(self, *, paid: int = 0, promo: int | None = None, **kwargs: Any) -> str:
        """A new account with `paid` topped up; `promo` replaces the welcome bonus amount."""
        policy = self.policy
        if promo is not None:
            policy = LedgerPolicy(
                min_balance_paisa=policy.min_balance_paisa,
                welcome_promo_paisa=promo,
                call_hold_paisa=policy.call_hold_paisa,
                max_call_duration=policy.max_call_duration,
                hold_grace=policy.hold_grace,
            )
        account, _ = self.tx(
            lambda s: ledger_accounts.create_account(
                s, policy, name="Test", email="test@example.com", **kwargs
            )
        )
        if paid:
            self.top_up(account.id, paid)
        return account.id

    def top_up(self, account_id: str, amount: int, reference: str | None = None) -> None:
        ref = reference or uid("pay")
        self.tx(
            lambda s: ledger_accounts.top_up(
                s, account_id=account_id, amount_paisa=amount, payment_reference=ref
            )
        )

    def authorize(
        self, account_id: str, call_id: str | None = None, channel: str = "phone", **kw: Any
    ) -> AuthorizeDecision:
        cid = call_id or uid("call")
        return self.tx(
            lambda s: ledger_calls.authorize_call(
                s, self.policy, call_id=cid, account_id=account_id, channel=channel, **kw
            )
        )

    def finalize(
        self,
        call_id: str,
        outcome: str = "completed",
        usage: Sequence[Mapping[str, object]] = TYPICAL_PHONE_CALL_USAGE,
        channel: str = "phone",
        now: datetime | None = None,
    ) -> FinalizedCall:
        card = self.tx(lambda s: rate_cards.load_rate_card(s, _card_version(s, call_id)))
        totals = UsageTotals()
        for raw in usage:
            totals.add(validate_usage_event(raw, channel, card))
        request = FinalizeCallRequest(
            call_id=call_id, outcome=outcome, usage=totals.lines, usage_event_count=len(usage)
        )
        return self.tx(lambda s: ledger_calls.finalize_call(s, request, now=now))

    def call(self, account_id: str, outcome: str = "completed", **kw: Any) -> FinalizedCall:
        call_id = uid("call")
        decision = self.authorize(account_id, call_id)
        assert decision.authorized, decision
        return self.finalize(call_id, outcome, **kw)

    def balance(self, account_id: str, now: datetime | None = None) -> balances.BalanceSummary:
        return self.tx(lambda s: balances.balance_summary(s, account_id, now))

    def account_row(self, account_id: str) -> Account:
        with self.factory() as s:
            account = s.get(Account, account_id)
            assert account is not None
            return account

    def transactions(self, account_id: str) -> list[LedgerTransaction]:
        with self.factory() as s:
            return list(
                s.scalars(
                    select(LedgerTransaction)
                    .where(LedgerTransaction.account_id == account_id)
                    .order_by(LedgerTransaction.id)
                )
            )

    def active_holds(self, account_id: str) -> int:
        with self.factory() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(Hold)
                    .where(Hold.account_id == account_id, Hold.status == "active")
                )
                or 0
            )

    def violations(self, *account_ids: str) -> list[Violation]:
        with self.factory() as s:
            return check_ledger(s, list(account_ids))

    def assert_consistent(self, *account_ids: str) -> None:
        found = self.violations(*account_ids)
        assert not found, "\n".join(str(v) for v in found)


def _card_version(session: Session, call_id: str) -> int:
    version = ledger_calls.get_call(session, call_id).rate_card_version
    assert version is not None
    return version


@pytest.fixture
def ledger(session_factory: sessionmaker[Session], policy: LedgerPolicy) -> Ledger:
    return Ledger(session_factory, policy)


@pytest.fixture(scope="module")
def isolated_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database of its own for tests that publish rate cards, sweep every account or corrupt
    rows on purpose; the in-process rate card cache is cleared around it (versions collide)."""
    url = create_scratch_database(postgres_server_url, prefix="billing_iso")
    upgrade(url)
    rate_cards.clear_cache()
    yield url
    rate_cards.clear_cache()
    get_engine(url).dispose()
    drop_database(postgres_server_url, url)


@pytest.fixture
def isolated_ledger(isolated_database_url: str, policy: LedgerPolicy) -> Ledger:
    return Ledger(get_sessionmaker(isolated_database_url), policy)


@pytest.fixture(scope="module")
def property_coupon(session_factory: sessionmaker[Session]) -> str:
    code = "Prop" + uuid.uuid4().hex[:10]
    run_in_transaction(
        session_factory, lambda s: coupons.create_coupon(s, code=code, bonus_paisa=777)
    )
    return code
