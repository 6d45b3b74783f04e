"""History on the real ledger for the statement, export and dashboard tests: calls started and
finalized as the workflow would (without Temporal), and rows moved into an earlier month."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from db.session import run_in_transaction
from domain.ledger_types import FinalizeCallRequest
from domain.rating import UsageTotals, validate_usage_event
from ledger import calls as ledger_calls
from ledger import posting, rate_cards
from ledger.policy import LedgerPolicy


def start_call(
    factory: sessionmaker[Session],
    account_id: str,
    call_id: str,
    channel: str,
    *,
    seconds_ago: int = 0,
) -> None:
    started = (posting.utcnow() - timedelta(seconds=seconds_ago)).isoformat()
    decision = run_in_transaction(
        factory,
        lambda s: ledger_calls.authorize_call(
            s,
            LedgerPolicy(),
            call_id=call_id,
            account_id=account_id,
            channel=channel,
            started_at=started,
        ),
    )
    assert decision.authorized, decision


def finish_call(
    factory: sessionmaker[Session],
    call_id: str,
    channel: str,
    events: list[dict[str, object]],
    outcome: str = "completed",
    hangup_reason: str | None = None,
) -> int:
    """Finalize through the ledger as the workflow would; returns the total charged."""
    card = run_in_transaction(factory, lambda s: rate_cards.current_rate_card(s))
    totals = UsageTotals()
    for raw in events:
        totals.add(validate_usage_event(raw, channel, card))
    request = FinalizeCallRequest(
        call_id=call_id,
        outcome=outcome,
        hangup_reason=hangup_reason,
        usage=totals.lines,
        usage_event_count=len(events),
    )
    result = run_in_transaction(factory, lambda s: ledger_calls.finalize_call(s, request))
    return result.breakdown.total_paisa


def move_history(factory: sessionmaker[Session], account_id: str, to: datetime) -> None:
    """Every transaction and call of the account so far, as if it happened at `to` (calls
    keep their length). Test data only: the ledger never rewrites history."""

    def work(session: Session) -> None:
        params = {"account": account_id, "to": to}
        session.execute(
            text("UPDATE ledger_transactions SET created_at = :to WHERE account_id = :account"),
            params,
        )
        session.execute(
            text(
                "UPDATE calls SET started_at = :to - (coalesce(ended_at, now()) - started_at), "
                "ended_at = CASE WHEN ended_at IS NULL THEN NULL ELSE :to END, "
                "finalized_at = CASE WHEN finalized_at IS NULL THEN NULL ELSE :to END, "
                "created_at = :to, updated_at = :to WHERE account_id = :account"
            ),
            params,
        )

    run_in_transaction(factory, work)
