"""A call is priced with the rate card in force when it was authorized, even when a new card
is published mid-call. Publishing changes global state, so this runs on its own database."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from db.session import get_engine, get_sessionmaker
from dev.postgres import create_scratch_database, drop_database
from domain.default_rate_card import DEFAULT_PRICES, TYPICAL_PHONE_CALL_USAGE
from ledger import rate_cards
from ledger.policy import LedgerPolicy
from tests.support.calls import Ledger, running_worker, uid


@pytest.fixture(scope="module")
def isolated_factory(postgres_server_url: str) -> Iterator[sessionmaker[Session]]:
    url = create_scratch_database(postgres_server_url, prefix="billing_pinning")
    upgrade(url)
    yield get_sessionmaker(url)
    get_engine(url).dispose()
    drop_database(postgres_server_url, url)


async def test_price_uses_the_card_pinned_at_authorization(
    workflow_env: WorkflowEnvironment, isolated_factory: sessionmaker[Session]
) -> None:
    ledger = Ledger(isolated_factory, LedgerPolicy())
    account_id = ledger.account(paid=10_000, promo=0)
    async with running_worker(workflow_env.client, isolated_factory) as billing:
        pinned_call, later_call = uid("call"), uid("call")
        pinned = await billing.authorize(pinned_call, account_id, "phone")
        doubled = [
            {
                "sku": p.sku,
                "component": p.component,
                "unit": p.unit,
                "price_inr": str(2 * Decimal(p.price_inr)),
            }
            for p in DEFAULT_PRICES
        ]
        card = ledger.tx(lambda s: rate_cards.publish_rate_card(s, prices=doubled))
        assert pinned.rate_card_version is not None and card.version > pinned.rate_card_version
        later = await billing.authorize(later_call, account_id, "phone")
        assert later.rate_card_version == card.version

        for call_id in (pinned_call, later_call):
            await billing.report_usage(call_id, {"events": TYPICAL_PHONE_CALL_USAGE})
            await billing.hangup(call_id, "completed")
        pinned_result = await billing.result(pinned_call)
        later_result = await billing.result(later_call)
    assert pinned_result.rate_card_version == pinned.rate_card_version
    assert pinned_result.breakdown.total_paisa == 442
    # Doubled prices: 680 provider + 204 margin.
    assert later_result.breakdown.total_paisa == 884
    assert ledger.balance(account_id).paid_paisa == 10_000 - 442 - 884
