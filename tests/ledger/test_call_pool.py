"""A call's ledger transactions on the async pool (ledger.calls.authorize_call_async,
finalize_call_async, ledger.call_usage.checkpoint_usage_async), as the worker runs them: on
twin accounts they leave what the Session path leaves, and they write nothing and answer None
where only a Session can finish (housekeeping due, a call finalized already, an auto-recharge
checkout to record), which the Session path then does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import pytest_asyncio
from sqlalchemy import select

from db.async_pool import AsyncPool, open_async_pool, run_in_async_transaction
from db.payment_models import Checkout
from domain.contracts.call_usage import UsageCheckpoint, events_to_json
from domain.ledger_types import AuthorizeDecision, FinalizeCallRequest, FinalizedCall
from ledger import accounts as ledger_accounts
from ledger import call_usage, rate_cards
from ledger import calls as ledger_calls
from tests.ledger.conftest import Ledger, uid
from tests.ledger.test_call_statements import (
    arm_auto_recharge,
    comparable,
    llm,
    rows_of,
    validated,
)

T = TypeVar("T")


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncPool]:
    opened = await open_async_pool(database_url, 2, name="test-calls")
    yield opened
    await opened.close()


async def on_pool(
    pool: AsyncPool, hot: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
) -> T:
    return await run_in_async_transaction(pool, hot)


def authorize_hot(ledger: Ledger, account_id: str, call_id: str, **kw: Any) -> Any:
    return lambda conn: ledger_calls.authorize_call_async(
        conn, ledger.policy, call_id=call_id, account_id=account_id, channel="phone", **kw
    )


def checkpoint_request(ledger: Ledger, call_id: str, batch: str, tokens: int) -> UsageCheckpoint:
    found = validated(ledger, [llm(f"{batch}-e", tokens)])
    return UsageCheckpoint(call_id, batch, events_to_json(found))


async def checkpoint_on(
    pool: AsyncPool, ledger: Ledger, request: UsageCheckpoint, *, on_the_pool: bool
) -> call_usage.Checkpointed:
    if on_the_pool:
        done = await on_pool(pool, lambda conn: call_usage.checkpoint_usage_async(conn, request))
        assert done is not None  # answered on the pool
        return done
    return ledger.tx(lambda s: call_usage.checkpoint_usage(s, request))


async def finalize_on(
    pool: AsyncPool, ledger: Ledger, request: FinalizeCallRequest, *, on_the_pool: bool
) -> FinalizedCall:
    if on_the_pool:
        found = await on_pool(pool, lambda conn: ledger_calls.finalize_call_async(conn, request))
        if found is not None:
            return found
    return ledger.tx(lambda s: ledger_calls.finalize_call(s, request))


async def test_the_pool_path_leaves_what_the_session_path_leaves(
    ledger: Ledger, pool: AsyncPool
) -> None:
    """Authorize, two checkpoints (one retried), finalize with new and repeated events, a
    retried finalize: the same answers and the same rows either way, every step answered on
    the pool itself."""
    results = []
    for on_the_pool in (True, False):
        account_id, call_id = ledger.account(paid=50_000, promo=300), uid("call")
        answers: list[Any] = []
        if on_the_pool:
            answers.append(await on_pool(pool, authorize_hot(ledger, account_id, call_id)))
        else:
            answers.append(ledger.authorize(account_id, call_id))
        for batch, tokens in (("b1", 400_000), ("b2", 300_000), ("b2", 300_000)):
            request = checkpoint_request(ledger, call_id, batch, tokens)
            done = await checkpoint_on(pool, ledger, request, on_the_pool=on_the_pool)
            answers.append((done.result, {**done.balance.__dict__, "account_id": None}))
        raw = [llm("b2-e", 300_000), llm("b1-e", 400_000), llm("e3", 200_000)]
        final = FinalizeCallRequest(
            call_id, "completed", "hangup", "2026-11-30T10:00:00+00:00",
            events_json=events_to_json(validated(ledger, raw)), batch="b3",
        )  # fmt: skip
        finalized = await finalize_on(pool, ledger, final, on_the_pool=on_the_pool)
        answers.append(comparable(finalized))
        # A retry of the committed finalization (the call is finalized: the Session answers).
        again = await finalize_on(pool, ledger, final, on_the_pool=on_the_pool)
        answers.append(comparable(again))
        answers[0] = comparable(answers[0])
        answers.append(rows_of(ledger, account_id, call_id))
        ledger.assert_consistent(account_id)
        results.append(answers)
    assert results[0] == results[1]
    decision, *_, finalized, again, rows = results[0]
    assert decision["authorized"] and decision["rate_card"] is not None
    assert finalized["charged"] and finalized["duplicate_event_ids"] == ["b2-e", "b1-e"]
    assert again["breakdown"] == finalized["breakdown"]
    assert [row[0] for row in rows["events"]] == ["b1-e", "b2-e", "e3"]
    assert rows["hold"][0][2] == "captured"


async def test_the_pool_hands_housekeeping_to_the_session(ledger: Ledger, pool: AsyncPool) -> None:
    """An expired promo lot: authorize on the pool writes nothing and answers None; the
    Session path expires the lot first, then decides."""
    account_id = ledger.account(paid=5_000, promo=0)
    expires = datetime.now(UTC) + timedelta(days=1)
    ledger.tx(
        lambda s: ledger_accounts.grant_promo(
            s, account_id=account_id, amount_paisa=300, grant_key=uid("g"), expires_at=expires
        )
    )
    call_id = uid("call")
    later = expires + timedelta(seconds=1)
    assert await on_pool(pool, authorize_hot(ledger, account_id, call_id, now=later)) is None
    assert ledger.account_row(account_id).reserved_paisa == 0
    assert ledger.active_holds(account_id) == 0
    decision = ledger.authorize(account_id, call_id, now=later)
    assert decision.authorized and decision.balance is not None
    assert decision.balance.promo_paisa == 0
    # The decision made, a replay on the pool answers it (the account needs nothing now).
    replay = await on_pool(pool, authorize_hot(ledger, account_id, call_id, now=later))
    assert isinstance(replay, AuthorizeDecision)
    assert comparable(replay) == comparable(decision)
    ledger.assert_consistent(account_id)


async def test_an_auto_recharge_crossing_is_the_sessions_to_record(
    ledger: Ledger, pool: AsyncPool
) -> None:
    """A checkpoint whose raised hold crosses the threshold, and a charge that crosses it: the
    pool writes nothing and answers None; the Session path records the one checkout."""
    account_id, call_id = ledger.account(paid=1_500, promo=300), uid("call")
    assert await on_pool(pool, authorize_hot(ledger, account_id, call_id))
    arm_auto_recharge(ledger, account_id)
    request = checkpoint_request(ledger, call_id, "b1", 400_000)
    hot = await on_pool(pool, lambda conn: call_usage.checkpoint_usage_async(conn, request))
    assert hot is None
    assert ledger.account_row(account_id).reserved_paisa == 1_000  # the hold has not moved
    done = ledger.tx(lambda s: call_usage.checkpoint_usage(s, request))
    assert done.recharge_recorded

    # Disarmed by that crossing and armed again: now the charge itself crosses.
    arm_auto_recharge(ledger, account_id)
    final = FinalizeCallRequest(call_id, "completed", events_json="", batch="b2")
    assert await on_pool(pool, lambda conn: ledger_calls.finalize_call_async(conn, final)) is None
    assert ledger.tx(lambda s: ledger_calls.get_call(s, call_id)).status == "active"
    finalized = ledger.tx(lambda s: ledger_calls.finalize_call(s, final))
    assert finalized.charged
    assert ledger.account_row(account_id).auto_recharge_armed is False  # the crossing taken
    with ledger.factory() as s:
        checkouts = s.scalars(select(Checkout).where(Checkout.account_id == account_id)).all()
    assert len(checkouts) == 1  # the first is still open: one auto-recharge at a time
    ledger.assert_consistent(account_id)


async def test_a_call_finalized_already_is_the_sessions(ledger: Ledger, pool: AsyncPool) -> None:
    """After the orphan sweep: a checkpoint or a finalize on the pool writes nothing and
    answers None (the Session path charges what they carry as late usage)."""
    account_id, call_id = ledger.account(paid=10_000), uid("call")
    assert await on_pool(pool, authorize_hot(ledger, account_id, call_id))
    ledger.tx(lambda s: ledger_calls.finalize_orphaned_call(s, call_id))
    before = len(ledger.transactions(account_id))
    request = checkpoint_request(ledger, call_id, "b1", 400_000)
    assert await on_pool(pool, lambda c: call_usage.checkpoint_usage_async(c, request)) is None
    final = FinalizeCallRequest(call_id, "completed", events_json=request.events_json)
    assert await on_pool(pool, lambda c: ledger_calls.finalize_call_async(c, final)) is None
    assert len(ledger.transactions(account_id)) == before
    ledger.assert_consistent(account_id)


async def test_a_rate_card_not_cached_is_read_in_the_transaction(
    ledger: Ledger, pool: AsyncPool
) -> None:
    account_id, call_id = ledger.account(paid=10_000), uid("call")
    rate_cards.clear_cache()
    decision = await on_pool(pool, authorize_hot(ledger, account_id, call_id))
    assert decision is not None and decision.rate_card is not None
    assert decision.rate_card == ledger.tx(
        lambda s: rate_cards.load_rate_card(s, decision.rate_card_version or 0)
    )
    rate_cards.clear_cache()
    final = FinalizeCallRequest(
        call_id, "completed", events_json=events_to_json(validated(ledger, [llm("e", 10**6)]))
    )
    finalized = await on_pool(pool, lambda c: ledger_calls.finalize_call_async(c, final))
    assert finalized is not None and finalized.breakdown.total_paisa > 0
    ledger.assert_consistent(account_id)
