"""A call's authorize, finalize and void are plain statements (ledger.calls on
ledger.repositories.call_charges); the ORM path they replace on the hot path (still taken for
housekeeping and already-finalized calls) is the reference: on twin accounts the two must
leave the same rows, the same answers and consistent books, including the edges (usage already
checkpointed by this batch or another, repeated ids, overdraft, the low-balance alert outbox and
the auto-recharge crossing), and void must release the hold exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.payment_models import PaymentMethod
from domain.contracts.call_usage import UsageCheckpoint, events_to_json
from domain.ledger_types import AuthorizeDecision, FinalizeCallRequest, FinalizedCall
from domain.rating import UsageEvent, validate_usage_event
from ledger import call_usage, rate_cards
from ledger import calls as ledger_calls
from ledger.posting import request_hash, utcnow
from tests.ledger.conftest import Ledger, uid

LLM = {"component": "llm", "sku": "openai/gpt-4o-mini"}


def llm(event_id: str, tokens: int) -> dict[str, object]:
    """`tokens` gpt-4o-mini input tokens: 1,000,000 is ₹16.25 with the 30 % margin."""
    return {**LLM, "event_id": event_id, "input_tokens": tokens, "output_tokens": 0}


def events(session: Session, raw: Sequence[Mapping[str, object]]) -> list[UsageEvent]:
    card = rate_cards.current_rate_card(session)
    return [validate_usage_event(item, "phone", card) for item in raw]


def arm_auto_recharge(ledger: Ledger, account_id: str) -> None:
    """Auto-recharge on at ₹10 with a saved card, armed (set on the rows: the crossing rule is
    what is compared, not the checkout setup)."""
    method = uid("pm")

    def turn_on(s: Session) -> None:
        s.add(PaymentMethod(id=method, account_id=account_id, customer_id="c", token_id=method))
        s.flush()
        s.execute(
            text(
                "UPDATE accounts SET auto_recharge_enabled = true, auto_recharge_armed = true, "
                "auto_recharge_threshold_paisa = 1000, auto_recharge_amount_paisa = 50000, "
                "auto_recharge_method_id = :method WHERE id = :id"
            ),
            {"id": account_id, "method": method},
        )

    ledger.tx(turn_on)


def rows_of(ledger: Ledger, account_id: str, call_id: str) -> dict[str, Any]:
    """Everything a call's life wrote, with ids, keys and times left out (they differ between
    twins); the call id is replaced by `C`."""

    def fetch(session: Session, sql: str) -> list[tuple[Any, ...]]:
        params = {"a": account_id, "c": call_id, "h": request_hash({"call_id": call_id})}
        found = session.execute(text(sql), params).all()
        return [
            tuple(v.replace(call_id, "C") if isinstance(v, str) else v for v in row)
            for row in found
        ]

    with ledger.factory() as s:
        return {
            "account": fetch(
                s,
                "SELECT paid_paisa, promo_paisa, reserved_paisa, version, low_balance_armed, "
                "auto_recharge_armed FROM accounts WHERE id = :a",
            ),
            "call": fetch(
                s,
                "SELECT status, authorized, refusal_reason, outcome, hangup_reason, "
                "rate_card_version, margin_rate, hold_paisa, available_at_authorization_paisa, "
                "usage::text, usage_event_count, rejected_event_count, llm_paisa, stt_paisa, "
                "tts_paisa, sip_paisa, provider_total_paisa, margin_paisa, total_paisa, "
                "transaction_id IS NULL, ended_at IS NULL, finalized_at IS NULL "
                "FROM calls WHERE call_id = :c",
            ),
            "hold": fetch(
                s,
                "SELECT reference, amount_paisa, status, released_at IS NULL, "
                "expires_at - (SELECT started_at FROM calls WHERE call_id = :c) "
                "FROM holds WHERE account_id = :a",
            ),
            "transactions": fetch(
                s,
                "SELECT kind, idempotency_key, request_hash = :h, amount_paisa, paid_delta_paisa, "
                "promo_delta_paisa, paid_balance_after, promo_balance_after, balance_after, "
                "reference, description, details::text FROM ledger_transactions "
                "WHERE account_id = :a AND kind LIKE 'call%' ORDER BY id",
            ),
            "entries": fetch(
                s,
                "SELECT j.book, j.amount_paisa FROM journal_entries j JOIN ledger_transactions t "
                "ON t.id = j.transaction_id WHERE t.account_id = :a AND t.kind LIKE 'call%' "
                "ORDER BY j.book, j.amount_paisa",
            ),
            "allocations": fetch(
                s,
                "SELECT la.kind, l.kind, la.amount_paisa, l.remaining_paisa "
                "FROM lot_allocations la LEFT JOIN credit_lots l ON l.id = la.lot_id "
                "JOIN ledger_transactions t ON t.id = la.transaction_id "
                "WHERE t.account_id = :a AND t.kind LIKE 'call%' ORDER BY la.kind, l.kind",
            ),
            "events": fetch(
                s,
                "SELECT event_id, component, sku, quantities::text, occurred_at, batch, phase "
                "FROM call_usage_events WHERE call_id = :c ORDER BY event_id",
            ),
            "alerts": fetch(
                s,
                "SELECT payload - 'account_id' - 'dedupe_key' FROM alert_outbox "
                "WHERE account_id = :a ORDER BY id",
            ),
            "recharges": fetch(
                s,
                "SELECT kind, amount_paisa, status, request_key = 'auto-recharge:' || :a || ':' "
                "|| (SELECT version FROM accounts WHERE id = :a) FROM checkouts "
                "WHERE account_id = :a",
            ),
            "month": fetch(
                s, "SELECT charged_paisa FROM account_month_usage WHERE account_id = :a"
            ),
        }


def comparable(result: FinalizedCall | AuthorizeDecision) -> dict[str, Any]:
    """An answer without what differs between twins (ids)."""
    fields = dict(result.__dict__)
    for name in ("call_id", "account_id", "transaction_id"):
        fields.pop(name, None)
    if fields.get("balance") is not None:
        fields["balance"] = {**fields["balance"].__dict__, "account_id": None}
    return fields


def authorize(ledger: Ledger, account_id: str, call_id: str, *, orm: bool) -> AuthorizeDecision:
    """Through the statements, or (`orm`) through the ORM path they replace."""
    if not orm:
        return ledger.authorize(account_id, call_id)

    def work(s: Session) -> AuthorizeDecision:
        now = utcnow()
        return ledger_calls._authorize_with_session(
            s, ledger.policy, call_id=call_id, account_id=account_id, channel="phone",
            started=now, now=now,
        )  # fmt: skip

    return ledger.tx(work)


def finalize(ledger: Ledger, request: FinalizeCallRequest, *, orm: bool) -> FinalizedCall:
    """Through the statements, or (`orm`) through the ORM path they replace."""

    def work(s: Session) -> FinalizedCall:
        if orm:
            return ledger_calls._finalize_with_session(s, request, utcnow())
        return ledger_calls.finalize_call(s, request)

    return ledger.tx(work)


def validated(ledger: Ledger, raw: Sequence[Mapping[str, object]]) -> list[UsageEvent]:
    return ledger.tx(lambda s: events(s, raw))


def live_call(ledger: Ledger, account_id: str, call_id: str, *, orm: bool) -> AuthorizeDecision:
    """Authorized, then two checkpoints (batches b1, b2) of usage."""
    decision = authorize(ledger, account_id, call_id, orm=orm)
    for batch, raw in (("b1", [llm("e1", 400_000)]), ("b2", [llm("e2", 300_000)])):
        checkpoint = UsageCheckpoint(call_id, batch, events_to_json(validated(ledger, raw)))
        ledger.tx(lambda s: call_usage.checkpoint_usage(s, checkpoint))  # noqa: B023
    return decision


FINALS: dict[str, tuple[str, list[dict[str, object]] | None]] = {
    # e2 again from its own batch (a retry: not a duplicate), e1 from another (a duplicate),
    # e3 twice in this request (the second a duplicate), e4 new: ₹40+ in all, past the balance.
    "completed, overdraft and both crossings": (
        "completed",
        [
            llm("e2", 300_000),
            llm("e3", 800_000),
            llm("e3", 800_000),
            llm("e1", 400_000),
            llm("e4", 1_000_000),
        ],
    ),
    "no_answer charges nothing and voids the hold": ("no_answer", [llm("e5", 900_000)]),
    "completed with nothing new to record": ("completed", []),
    "completed, a workflow's own totals": ("completed", None),
}


@pytest.mark.parametrize("final", list(FINALS))
def test_the_statements_leave_what_the_orm_path_leaves(ledger: Ledger, final: str) -> None:
    outcome, raw = FINALS[final]
    results: list[list[dict[str, Any]]] = []
    for orm in (False, True):
        account_id, call_id = ledger.account(paid=1_500, promo=300), uid("call")
        decision = live_call(ledger, account_id, call_id, orm=orm)
        arm_auto_recharge(ledger, account_id)  # after the checkpoints: the charge crosses
        if raw is None:
            lines = ledger.tx(lambda s: call_usage.usage_lines(ledger_calls.get_call(s, call_id)))  # noqa: B023
            request = FinalizeCallRequest(
                call_id, outcome, "hangup", usage=lines, usage_event_count=7,
                rejected_event_count=2,
            )  # fmt: skip
        else:
            request = FinalizeCallRequest(
                call_id, outcome, "hangup", "2026-11-30T10:00:00+00:00",
                rejected_event_count=2, events_json=events_to_json(validated(ledger, raw)),
                batch="b2",
            )  # fmt: skip
        finalized = finalize(ledger, request, orm=orm)
        # A retry of the committed finalization answers the same (the first one wins).
        again = finalize(ledger, request, orm=False)
        assert again.breakdown == finalized.breakdown
        assert again.transaction_id == finalized.transaction_id
        ledger.assert_consistent(account_id)
        results.append(
            [comparable(decision), comparable(finalized), rows_of(ledger, account_id, call_id)]
        )
    statements, orm_path = results
    for part in range(3):  # the decisions, the answers, the rows
        for key in statements[part]:
            assert statements[part][key] == orm_path[part][key], (part, key)
    answer, result, rows = statements
    assert answer["authorized"] and answer["hold_paisa"] == 1000
    assert rows["hold"][0][2] == ("captured" if outcome == "completed" else "voided")
    if final.startswith("completed, overdraft"):  # the scenario reaches every edge it names
        assert result["duplicate_event_ids"] == ["e3", "e1"]
        assert {row[0] for row in rows["allocations"]} == {"debit", "overdraft"}
        # The welcome promo alone was below the threshold (the first alert); the charge is
        # the second crossing, and the auto-recharge one.
        assert [row[0]["available_paisa"] for row in rows["alerts"]] == [300, -2263]
        assert len(rows["recharges"]) == 1 and rows["recharges"][0][3]
        assert [row[0] for row in rows["events"]] == ["e1", "e2", "e3", "e4"]
        assert result["usage_event_count"] == 4
    if outcome == "no_answer":
        assert rows["transactions"] == [] and result["breakdown"].total_paisa == 0
        assert [row[0] for row in rows["events"]] == ["e1", "e2", "e5"]


def test_authorize_statements_decide_as_the_orm_path(ledger: Ledger) -> None:
    """Authorized, refused below the minimum balance, a replay, an unknown account."""
    results = []
    for orm in (False, True):
        rich, poor = ledger.account(paid=1_000), ledger.account(promo=900)
        answers = []
        for account_id in (rich, poor, "acc_unknown"):
            call_id = uid("call")
            for _ in range(2):  # the second is a replay of the first
                answers.append(comparable(authorize(ledger, account_id, call_id, orm=orm)))
            if account_id != "acc_unknown":
                answers.append(rows_of(ledger, account_id, call_id))
        ledger.assert_consistent(rich, poor)
        results.append(answers)
    assert results[0] == results[1]
    authorized, _, rich_rows, refused, _, poor_rows, unknown, _ = results[0]
    assert authorized["authorized"] and rich_rows["account"][0][2] == 1000
    assert not refused["authorized"] and refused["reason"] == "insufficient_balance"
    assert poor_rows["hold"] == [] and poor_rows["call"][0][0] == "finalized"
    assert not unknown["authorized"] and unknown["reason"] == "account_not_found"


def test_void_releases_the_hold_once(ledger: Ledger) -> None:
    account_id = ledger.account(paid=1_000)
    call_id = uid("call")
    assert ledger.authorize(account_id, call_id).authorized
    assert ledger.account_row(account_id).reserved_paisa == 1000
    void = lambda s: ledger_calls.void_call(s, call_id, "billing_unavailable")  # noqa: E731
    assert ledger.tx(void) is True
    assert ledger.tx(void) is False  # nothing left to void
    assert ledger.tx(lambda s: ledger_calls.void_call(s, uid("call"), "x")) is False
    row = ledger.account_row(account_id)
    assert (row.reserved_paisa, row.paid_paisa, row.promo_paisa) == (0, 1_000, 5_000)
    rows = rows_of(ledger, account_id, call_id)
    assert rows["hold"][0][2] == "voided" and rows["transactions"] == []
    status, authorized, reason, outcome = rows["call"][0][:4]
    assert (status, authorized, reason, outcome) == (
        "finalized", False, "billing_unavailable", "refused",
    )  # fmt: skip
    assert rows["call"][0][12:19] == (0,) * 7
    # A finalization after the void changes nothing: the first end wins.
    finalized = ledger.finalize(call_id)
    assert finalized.outcome == "refused" and not finalized.charged
    assert ledger.account_row(account_id).paid_paisa == 1_000
    ledger.assert_consistent(account_id)


def test_late_usage_for_a_finalized_call_goes_through_the_orm_path(ledger: Ledger) -> None:
    """Events on a finalize of a call finalized already (the orphan sweep was first): charged
    as late usage, once."""
    account_id = ledger.account(paid=10_000)
    call_id = uid("call")
    live_call(ledger, account_id, call_id, orm=False)
    swept = ledger.tx(lambda s: ledger_calls.finalize_orphaned_call(s, call_id))
    assert swept.outcome == "abandoned" and swept.charged
    found = validated(ledger, [llm("late", 1_000_000)])
    request = FinalizeCallRequest(
        call_id, "completed", events_json=events_to_json(found), batch="b9"
    )
    for _ in range(2):
        answer = ledger.tx(lambda s: ledger_calls.finalize_call(s, request))
        assert answer.outcome == "abandoned"
    kinds = [row[0] for row in rows_of(ledger, account_id, call_id)["transactions"]]
    assert kinds == ["call_charge", "call_adjustment"]
    ledger.assert_consistent(account_id)
