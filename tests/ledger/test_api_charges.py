"""The osmAPI charge path (ledger.api_requests): plain statements on the async pool and on a
Session's connection, under concurrency on one account, across lots, with housekeeping first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from db.async_pool import open_async_pool, run_in_async_transaction
from ledger import accounts as ledger_accounts
from ledger import api_requests
from ledger.api_charge_types import ApiCharge, ApiChargeError, ApiUsage, NeedsSession
from tests.ledger.conftest import Ledger, uid

MINI = "openai/gpt-4o-mini"  # 24,000 in + 2,000 out = 52 paisa


def usage(account_id: str, request_id: str | None = None, tokens: int = 24_000) -> ApiUsage:
    return ApiUsage(request_id or uid("req"), account_id, MINI, tokens, 2_000)


@pytest.fixture
def sync_charges(ledger: Ledger) -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


async def test_concurrent_charges_on_one_account_keep_the_books(
    ledger: Ledger, database_url: str, sync_charges: ThreadPoolExecutor
) -> None:
    """200 single charges and 10 batches of 20 on one account, through 8 async connections and
    4 Session threads at once: every one posted once, in one order, to the paisa."""
    account_id = ledger.account(paid=10_000, promo=500)
    pool = await open_async_pool(database_url, 8)
    try:

        async def one(items: list[ApiUsage]) -> list[ApiCharge | ApiChargeError]:
            result = await run_in_async_transaction(
                pool, lambda conn: api_requests.charge_api_usage_async(conn, items)
            )
            return result.items

        def on_session(items: list[ApiUsage]) -> list[ApiCharge | ApiChargeError]:
            return ledger.tx(lambda s: api_requests.charge_api_usage_batch(s, items)).items

        loop = asyncio.get_running_loop()
        singles = [[usage(account_id)] for _ in range(200)]
        batches = [[usage(account_id) for _ in range(20)] for _ in range(10)]
        replays = [[item] for item in singles[0] + batches[0][:5]]
        results = await asyncio.gather(
            *(one(items) for items in singles[:150] + batches[:5] + replays),
            *(
                loop.run_in_executor(sync_charges, on_session, items)
                for items in singles[150:] + batches[5:]
            ),
        )
    finally:
        await pool.close()
    charges = [item for items in results for item in items]
    assert all(isinstance(c, ApiCharge) for c in charges)
    new = [c for c in charges if isinstance(c, ApiCharge) and not c.replayed]
    assert len(new) == 400 and len({c.transaction_id for c in new}) == 400
    row = ledger.account_row(account_id)
    assert (row.promo_paisa, row.paid_paisa) == (0, 10_000 + 500 - 400 * 52)
    assert ledger.balance(account_id).month_usage_paisa == 400 * 52
    assert len(ledger.transactions(account_id)) == 2 + 400  # the top-up, the promo, the charges
    ledger.assert_consistent(account_id)


def test_a_batch_spends_promo_then_paid_then_overdraft(ledger: Ledger) -> None:
    account_id = ledger.account(paid=100, promo=60)
    ledger.top_up(account_id, 30)  # a second paid lot
    items = [usage(account_id) for _ in range(4)]  # 4 × 52 = 208 > 190
    result = ledger.tx(lambda s: api_requests.charge_api_usage_batch(s, items))
    after = result.accounts[account_id]
    assert (after.balance.promo_paisa, after.balance.paid_paisa) == (0, -18)
    assert after.available_before_paisa == 190 and after.balance.available_paisa == -18
    transactions = ledger.transactions(account_id)[-4:]
    assert [(t.promo_delta_paisa, t.paid_delta_paisa) for t in transactions] == [
        (-52, 0),
        (-8, -44),
        (0, -52),
        (0, -52),
    ]
    assert [t.balance_after for t in transactions] == [138, 86, 34, -18]
    ledger.assert_consistent(account_id)


async def test_housekeeping_comes_first(ledger: Ledger, database_url: str) -> None:
    """An expired promo lot never pays: the async path hands the account to the Session path,
    which expires the lot and then charges paid credit."""
    account_id = ledger.account(paid=1_000, promo=0)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    ledger.tx(
        lambda s: ledger_accounts.grant_promo(
            s, account_id=account_id, amount_paisa=300, grant_key=uid("g"), expires_at=expires
        )
    )
    item = usage(account_id)
    pool = await open_async_pool(database_url, 1)
    try:
        with pytest.raises(NeedsSession):
            await run_in_async_transaction(
                pool, lambda conn: api_requests.charge_api_usage_async(conn, [item], expires)
            )
        async with pool.connection() as conn:
            with pytest.raises(NeedsSession):
                await api_requests.authorize_api_request_async(
                    conn, account_id=account_id, now=expires
                )
    finally:
        await pool.close()
    assert len(ledger.transactions(account_id)) == 2  # nothing was written
    result = ledger.tx(lambda s: api_requests.charge_api_usage_batch(s, [item], expires))
    balance = result.accounts[account_id].balance
    assert (balance.promo_paisa, balance.paid_paisa) == (0, 1_000 - 52)
    kinds = [t.kind for t in ledger.transactions(account_id)]
    assert kinds[-2:] == ["promo_expiry", "api_charge"]
    ledger.assert_consistent(account_id)


def test_bad_requests_are_errors_of_their_own(ledger: Ledger) -> None:
    account_id = ledger.account(paid=1_000, promo=0)
    items = [
        usage(account_id),
        ApiUsage("", account_id, MINI, 1, 1),
        ApiUsage(uid("req"), account_id, MINI, -1, 1),
        ApiUsage(uid("req"), account_id, "x\x00y", 1, 1),
        ApiUsage(uid("req"), "acc_missing", MINI, 1, 1),
        ApiUsage(uid("req"), account_id, "nobody/none", 1, 1),
    ]
    result = ledger.tx(lambda s: api_requests.charge_api_usage_batch(s, items))
    codes = [i.error.code if isinstance(i, ApiChargeError) else "ok" for i in result.items]
    assert codes == ["ok", *["validation_error"] * 3, "not_found", "unknown_sku"]
    assert len(ledger.transactions(account_id)) == 2
    ledger.assert_consistent(account_id)


async def test_crossings_are_recorded_with_the_charge(ledger: Ledger, database_url: str) -> None:
    """What ledger.posting.post records, the fast path records: the low-balance crossing in the
    alert outbox, and an auto-recharge crossing as its checkout (through a Session)."""
    from sqlalchemy import select, update
    from sqlalchemy.orm import Session

    from db.models import Account, AlertOutbox
    from db.payment_models import Checkout, PaymentMethod

    account_id = ledger.account(paid=0, promo=1_100)  # alert threshold = min balance, 1,000
    method = uid("pm")

    def turn_on(s: Session) -> None:  # a saved card, as a paid checkout leaves one
        s.add(PaymentMethod(id=method, account_id=account_id, customer_id="c", token_id=method))
        s.flush()
        s.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(
                auto_recharge_enabled=True,
                auto_recharge_threshold_paisa=1_050,
                auto_recharge_amount_paisa=50_000,
                auto_recharge_method_id=method,
            )
        )

    ledger.tx(turn_on)
    first, second = usage(account_id), usage(account_id)  # 1,100 → 1,048 → 996
    pool = await open_async_pool(database_url, 1)
    try:
        with pytest.raises(NeedsSession):  # 1,048 crosses the auto-recharge threshold
            await run_in_async_transaction(
                pool, lambda conn: api_requests.charge_api_usage_async(conn, [first, second])
            )
    finally:
        await pool.close()
    result = ledger.tx(lambda s: api_requests.charge_api_usage_batch(s, [first, second]))
    assert result.recharges == [
        (account_id, result.accounts[account_id].balance.version - 1, 50_000)
    ]
    assert [a.available_paisa for a in result.alerts] == [996]
    with ledger.factory() as s:
        checkouts = s.scalars(select(Checkout).where(Checkout.account_id == account_id)).all()
        outbox = s.scalars(select(AlertOutbox).where(AlertOutbox.account_id == account_id)).all()
        row = s.get(Account, account_id)
        assert row is not None
        armed = (row.low_balance_armed, row.auto_recharge_armed)
    assert [(c.kind, c.amount_paisa) for c in checkouts] == [("auto_recharge", 50_000)]
    assert [o.dedupe_key for o in outbox] == [result.alerts[0].dedupe_key]
    assert armed == (False, False)
    ledger.assert_consistent(account_id)
