"""A running call's usage checkpoint (ledger.call_usage.checkpoint_usage, plain statements):
events recorded once per (call, event id), a retried batch told apart from duplicates, the hold
and reserved credit following the running cost, the auto-recharge crossing a raised hold makes,
and a call finalized meanwhile charged as late usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.models import Account, Call, CallUsageEvent, Hold
from db.payment_models import Checkout, PaymentMethod
from db.session import RETRYABLE_SQLSTATES
from domain.contracts.call_usage import UsageCheckpoint, events_to_json
from domain.rating import UsageTotals, price_usage, validate_usage_event
from ledger import call_usage, rate_cards
from ledger.errors import NotFound
from ledger.holds import call_hold_reference
from ledger.repositories import call_checkpoints as checkpoint_sql
from ledger.repositories.statements import Steps, run_steps
from tests.ledger.conftest import Ledger, uid

MIN_BALANCE = 1000


def second(call_id: str, n: int, tokens: int = 1000) -> list[dict[str, object]]:
    return [
        {"event_id": f"{n}-llm", "component": "llm", "sku": "openai/gpt-4o-mini",
         "input_tokens": tokens, "output_tokens": 100},
        {"event_id": f"{n}-stt", "component": "stt", "sku": "deepgram/nova-3",
         "audio_seconds": 1},
        {"event_id": f"{n}-tts", "component": "tts", "sku": "elevenlabs/flash-v2",
         "characters": 20},
        {"event_id": f"{n}-sip", "component": "sip", "sku": "plivo/in-outbound", "seconds": 1},
    ]  # fmt: skip


def checkpoint(
    ledger: Ledger, call_id: str, batch: str, raw: Sequence[Mapping[str, object]]
) -> call_usage.Checkpointed:
    card = ledger.tx(lambda s: rate_cards.current_rate_card(s))
    events = [validate_usage_event(item, "phone", card) for item in raw]
    request = UsageCheckpoint(call_id, batch, events_to_json(events))
    return ledger.tx(lambda s: call_usage.checkpoint_usage(s, request))


def running_total(ledger: Ledger, raw: Sequence[Mapping[str, object]], margin: str) -> int:
    card = ledger.tx(lambda s: rate_cards.current_rate_card(s))
    totals = UsageTotals()
    for item in raw:
        totals.add(validate_usage_event(item, "phone", card))
    return price_usage(totals.lines, card, Decimal(margin)).total_paisa


def hold_of(ledger: Ledger, call_id: str) -> int:
    with ledger.factory() as s:
        hold = s.scalars(select(Hold).where(Hold.reference == call_hold_reference(call_id))).one()
        return hold.amount_paisa


def test_events_once_retries_apart_from_duplicates_and_the_hold_follows(ledger: Ledger) -> None:
    account_id = ledger.account(paid=100_000)
    call_id = uid("call")
    decision = ledger.authorize(account_id, call_id)
    assert decision.authorized and decision.hold_paisa == MIN_BALANCE
    first = second(call_id, 1, tokens=400_000)
    done = checkpoint(ledger, call_id, "run:1", [*first, first[0]])  # one repeated in the batch
    running = running_total(ledger, first, decision.margin_rate)
    assert running + MIN_BALANCE > decision.hold_paisa  # the hold rises
    assert done.result.duplicate_event_ids == ["1-llm"]
    assert done.result.usage_event_count == 4
    assert done.result.running_total_paisa == running
    assert done.result.hold_paisa == running + MIN_BALANCE == hold_of(ledger, call_id)
    assert done.balance.reserved_paisa == running + MIN_BALANCE
    assert ledger.account_row(account_id).reserved_paisa == running + MIN_BALANCE
    assert not done.recharge_recorded

    # A retry of the committed batch finds its own rows: not duplicates, nothing changes.
    again = checkpoint(ledger, call_id, "run:1", first)
    assert again.result == done.result.__class__(
        usage=done.result.usage,
        usage_event_count=4,
        duplicate_event_ids=[],
        running_total_paisa=running,
        hold_paisa=running + MIN_BALANCE,
    )

    # Another batch repeating an event: a duplicate; the new one is recorded and priced.
    more = second(call_id, 2, tokens=400_000)
    later = checkpoint(ledger, call_id, "run:2", [first[1], *more])
    everything = [*first, *more]
    running = running_total(ledger, everything, decision.margin_rate)
    assert later.result.duplicate_event_ids == ["1-stt"]
    assert later.result.usage_event_count == 8
    assert later.result.hold_paisa == running + MIN_BALANCE == hold_of(ledger, call_id)
    with ledger.factory() as s:
        call = s.get(Call, call_id)
        assert call is not None and call.usage_event_count == 8
        assert call.usage == [line.__dict__ for line in later.result.usage]
        batches = dict(
            s.execute(
                select(CallUsageEvent.event_id, CallUsageEvent.batch).where(
                    CallUsageEvent.call_id == call_id
                )
            ).all()
        )
    assert batches == {**dict.fromkeys(["1-llm", "1-stt", "1-tts", "1-sip"], "run:1"),
                       **dict.fromkeys(["2-llm", "2-stt", "2-tts", "2-sip"], "run:2")}  # fmt: skip
    ledger.assert_consistent(account_id)

    finalized = ledger.finalize(call_id, usage=everything)
    assert finalized.breakdown.total_paisa == running
    assert ledger.account_row(account_id).reserved_paisa == 0
    ledger.assert_consistent(account_id)


def test_a_rate_card_not_cached_yet_is_read_in_the_same_transaction(ledger: Ledger) -> None:
    account_id = ledger.account(paid=100_000)
    call_id = uid("call")
    decision = ledger.authorize(account_id, call_id)
    rate_cards.clear_cache()
    done = checkpoint(ledger, call_id, "run:1", second(call_id, 1))
    assert done.result.running_total_paisa == running_total(
        ledger, second(call_id, 1), decision.margin_rate
    )


def test_a_raised_hold_records_one_auto_recharge_crossing(ledger: Ledger) -> None:
    account_id = ledger.account(paid=20_000, promo=0)

    method = uid("pm")

    def turn_on(s: Session) -> None:  # a saved card, as a paid checkout leaves one
        s.add(PaymentMethod(id=method, account_id=account_id, customer_id="c", token_id=method))
        s.flush()
        account = s.get(Account, account_id)
        assert account is not None
        account.auto_recharge_enabled = True
        account.auto_recharge_threshold_paisa = 10_000
        account.auto_recharge_amount_paisa = 50_000
        account.auto_recharge_method_id = method

    ledger.tx(turn_on)
    call_id = uid("call")
    assert ledger.authorize(account_id, call_id).authorized
    small = checkpoint(ledger, call_id, "run:1", second(call_id, 1))
    assert not small.recharge_recorded  # 20,000 − reserved still above 10,000
    crossing = checkpoint(ledger, call_id, "run:2", second(call_id, 2, tokens=8_000_000))
    assert crossing.balance.reserved_paisa > 10_000
    assert crossing.recharge_recorded
    after = checkpoint(ledger, call_id, "run:3", second(call_id, 3, tokens=1_000_000))
    assert not after.recharge_recorded  # disarmed: one checkout per crossing
    with ledger.factory() as s:
        checkouts = s.scalars(select(Checkout).where(Checkout.account_id == account_id)).all()
        account = s.get(Account, account_id)
        assert account is not None and account.auto_recharge_armed is False
    assert [c.request_key for c in checkouts] == [
        f"auto-recharge:{account_id}:{crossing.balance.version}"
    ]
    assert checkouts[0].amount_paisa == 50_000
    ledger.assert_consistent(account_id)


def test_a_call_finalized_meanwhile_takes_the_usage_as_late_usage(ledger: Ledger) -> None:
    account_id = ledger.account(paid=100_000)
    call_id = uid("call")
    assert ledger.authorize(account_id, call_id).authorized
    finalized = ledger.finalize(call_id)
    done = checkpoint(ledger, call_id, "run:1", second(call_id, 1))
    assert done.result.finalized and done.result.hold_paisa == 0
    assert done.result.running_total_paisa > finalized.breakdown.total_paisa
    kinds = [t.kind for t in ledger.transactions(account_id)]
    assert kinds[-1] == "call_adjustment"
    assert ledger.account_row(account_id).reserved_paisa == 0
    ledger.assert_consistent(account_id)


def test_an_unknown_call_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        checkpoint(ledger, uid("call"), "run:1", second("x", 1))


def test_an_event_recorded_already_fails_the_write_rather_than_counting_twice(
    ledger: Ledger,
) -> None:
    """The write trusts the call's locks that every event it gets is new (it reads nothing
    back): one that is not fails the transaction with a unique violation, which
    run_in_transaction retries, and the retry finds it recorded."""
    account_id = ledger.account(paid=100_000)
    call_id = uid("call")
    assert ledger.authorize(account_id, call_id).authorized
    checkpoint(ledger, call_id, "run:1", second(call_id, 1))
    event = ("1-llm", "llm", "openai/gpt-4o-mini", {"input_tokens": 1}, None)
    write = checkpoint_sql.write_checkpoint(
        call_id=call_id, batch="run:2", events=[event], usage=None, usage_event_count=0,
        now=datetime.now(UTC), hold=None, account=None,
    )  # fmt: skip

    def steps() -> Steps[None]:
        yield [write]

    with ledger.factory() as s, pytest.raises(DBAPIError) as raised:
        conn = s.connection().connection.driver_connection
        run_steps(conn, steps(), commit=lambda _: True)  # type: ignore[arg-type]
    assert getattr(raised.value.orig, "sqlstate", None) == "23505"
    assert "23505" in RETRYABLE_SQLSTATES
    with ledger.factory() as s:
        call = s.get(Call, call_id)
        assert call is not None and call.usage_event_count == 4
