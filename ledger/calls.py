"""Calls: authorize (the refusal rule with a hold, contract §2), finalize (the call charge's
ledger write: capture or void, exactly once; also for calls whose workflow was lost), the void
of an authorization that failed, and the reads of call rows. A running call's usage, its
running hold and late usage are `ledger.call_usage`'s."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from db.models import Account, Call
from domain.channels import Channel, Outcome, is_charged
from domain.contracts.call_usage import events_from_json
from domain.history import CallFilter
from domain.ledger_types import (
    REASON_ACCOUNT_NOT_FOUND,
    REASON_INSUFFICIENT_BALANCE,
    AuthorizeDecision,
    FinalizeCallRequest,
    FinalizedCall,
)
from domain.rating import Breakdown, price_usage
from ledger.call_usage import (
    apply_late_usage,
    call_breakdown,
    lock_call,
    record_events,
    store_breakdown,
    usage_lines,
)
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.holds import end_call_hold, place_call_hold
from ledger.policy import LedgerPolicy
from ledger.posting import (
    debit,
    housekeeping,
    margin_rate,
    refused,
    request_hash,
    snapshot,
    utcnow,
)
from ledger.rate_cards import current_rate_card, load_rate_card
from ledger.repositories import accounts as account_rows
from ledger.repositories import calls as call_rows

__all__ = ["call_breakdown"]  # re-exported: the API reads breakdowns from here
# hangup_reason of a call the orphan sweep finalized: its workflow was closed or missing.
ORPHANED_REASON = "workflow_lost"


def _decision_from_call(session: Session, call: Call, account: Account) -> AuthorizeDecision:
    return AuthorizeDecision(
        authorized=call.authorized,
        reason=call.refusal_reason,
        hold_paisa=call.hold_paisa,
        available_paisa=call.available_at_authorization_paisa,
        rate_card_version=call.rate_card_version,
        margin_rate=str(call.margin_rate),
        rate_card=load_rate_card(session, call.rate_card_version)
        if call.rate_card_version is not None
        else None,
        balance=snapshot(account),
    )


def _parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(f"{field} is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def authorize_call(
    session: Session,
    policy: LedgerPolicy,
    *,
    call_id: str,
    account_id: str,
    channel: str,
    started_at: str | None = None,
    now: datetime | None = None,
) -> AuthorizeDecision:
    """The refusal rule of contract §2 with a hold; idempotent on call_id."""
    now = now or utcnow()
    if not call_id or len(call_id) > 200:
        raise ValidationFailed("call_id must be 1 to 200 characters")
    if channel not in {c.value for c in Channel}:
        raise ValidationFailed(f"channel {channel!r} is unknown", code="invalid_channel")
    started = _parse_time(started_at, "started_at") or now
    account = account_rows.lock_account(session, account_id)
    if account is None:
        return AuthorizeDecision(False, REASON_ACCOUNT_NOT_FOUND, 0, 0, None)
    existing = call_rows.get_call(session, call_id)
    if existing is not None:
        if existing.account_id != account_id or existing.channel != channel:
            raise Conflict(f"call {call_id} was authorized for another account or channel")
        return _decision_from_call(session, existing, account)
    housekeeping(session, account, now)
    card = current_rate_card(session, now)
    authorized = not refused(account)
    call = Call(
        call_id=call_id,
        account_id=account_id,
        channel=channel,
        status="active" if authorized else "finalized",
        authorized=authorized,
        refusal_reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
        outcome=None if authorized else Outcome.REFUSED.value,
        rate_card_version=card.version,
        # As stored (NUMERIC(8,4)), so a replayed decision is identical to the first one.
        margin_rate=margin_rate(account).quantize(Decimal("0.0001")),
        hold_paisa=0,
        available_at_authorization_paisa=account.paid_paisa + account.promo_paisa,
        started_at=started,
        finalized_at=None if authorized else now,
        usage=[],
        usage_event_count=0,
        rejected_event_count=0,
        created_at=now,
        updated_at=now,
    )
    if not authorized:
        call.llm_paisa = call.stt_paisa = call.tts_paisa = call.sip_paisa = 0
        call.provider_total_paisa = call.margin_paisa = call.total_paisa = 0
    session.add(call)
    if authorized:
        call.hold_paisa = place_call_hold(session, policy, account, call_id, started)
    session.flush()
    return _decision_from_call(session, call, account)


def _finalized_view(
    call: Call, account: Account | None, duplicate_event_ids: list[str] | None = None
) -> FinalizedCall:
    return FinalizedCall(
        call_id=call.call_id,
        account_id=call.account_id,
        outcome=call.outcome or "",
        charged=call.transaction_id is not None,
        breakdown=call_breakdown(call),
        transaction_id=call.transaction_id,
        balance=snapshot(account) if account is not None else None,
        usage=usage_lines(call),
        usage_event_count=call.usage_event_count,
        duplicate_event_ids=duplicate_event_ids or [],
    )


def finalize_call(
    session: Session, request: FinalizeCallRequest, now: datetime | None = None
) -> FinalizedCall:
    """Capture (charged outcomes) or void (the rest), release the hold, exactly once.

    With `request.events` the ledger's usage is priced: what checkpoints recorded plus those
    events (recorded once per event id, in this same transaction)."""
    now = now or utcnow()
    account, call = lock_call(session, request.call_id)
    if call.status == "finalized":
        events = events_from_json(request.events_json or "")
        if events:  # finalized by the orphan sweep meanwhile: the rest is still owed
            apply_late_usage(session, account, call, events, batch=request.batch)
        return _finalized_view(call, account)  # the first finalization wins
    if request.outcome not in {o.value for o in Outcome} or request.outcome == Outcome.REFUSED:
        raise ValidationFailed(f"outcome {request.outcome!r} is not a final call outcome")
    # Expired promo must not pay for the charge; a stale hold (this call's too) is released.
    housekeeping(session, account, now)
    assert call.rate_card_version is not None
    card = load_rate_card(session, call.rate_card_version)
    charged = is_charged(request.outcome)
    duplicates: list[str] = []
    if request.events_json is not None:
        events = events_from_json(request.events_json)
        recorded = record_events(session, call, events, batch=request.batch, phase="live")
        duplicates = recorded.duplicates
    else:  # a workflow from before the ledger kept usage: its own totals
        call.usage = [line.__dict__ for line in request.usage]
        call.usage_event_count = request.usage_event_count
    priced = price_usage(usage_lines(call), card, call.margin_rate)
    breakdown = priced if charged else Breakdown.zero(call.margin_rate)
    call.status = "finalized"
    call.outcome = request.outcome
    call.hangup_reason = request.hangup_reason
    call.ended_at = _parse_time(request.ended_at, "ended_at") or now
    call.finalized_at = now
    call.updated_at = now
    call.rejected_event_count = request.rejected_event_count
    store_breakdown(call, breakdown)
    if charged and breakdown.total_paisa > 0:
        transaction = debit(
            session,
            account,
            breakdown.total_paisa,
            kind="call_charge",
            key=f"call:{call.call_id}:charge",
            payload_hash=request_hash({"call_id": call.call_id}),
            contra=[
                ("provider_payable", breakdown.provider_total_paisa),
                ("margin_revenue", breakdown.margin_paisa),
            ],
            reference=call.call_id,
            description=f"{call.channel.capitalize()} call ({request.outcome})",
            details={"breakdown": breakdown.__dict__, "channel": call.channel},
        )
        call.transaction_id = transaction.id
    end_call_hold(session, account, call.call_id, captured=charged, now=now)
    session.flush()
    return _finalized_view(call, account, duplicates)


def finalize_orphaned_call(
    session: Session, call_id: str, now: datetime | None = None
) -> FinalizedCall:
    """Finalize a call whose workflow is closed or missing as `abandoned`: charge the usage
    its checkpoints recorded and release its hold. Idempotent (the first finalization wins)."""
    call = get_call(session, call_id)
    return finalize_call(
        session,
        FinalizeCallRequest(
            call_id=call_id,
            outcome=Outcome.ABANDONED,
            hangup_reason=ORPHANED_REASON,
            events_json="",
            rejected_event_count=call.rejected_event_count,
            batch="orphaned",
        ),
        now,
    )


def void_call(session: Session, call_id: str, reason: str, now: datetime | None = None) -> bool:
    """An authorization nobody could confirm (the authorize activity failed, maybe after its
    commit): the call is finalized as refused for `reason` and its hold voided. Idempotent;
    False when there was nothing to void (no row, or already finalized)."""
    now = now or utcnow()
    if call_rows.get_call(session, call_id) is None:
        return False
    account, call = lock_call(session, call_id)
    if call.status == "finalized":
        return False
    call.status = "finalized"
    call.authorized = False
    call.refusal_reason = reason
    call.outcome = Outcome.REFUSED.value
    call.finalized_at = now
    call.updated_at = now
    store_breakdown(call, Breakdown.zero(call.margin_rate))
    end_call_hold(session, account, call_id, captured=False, now=now)
    session.flush()
    return True


def get_call(session: Session, call_id: str) -> Call:
    call = call_rows.get_call(session, call_id)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


def find_call(session: Session, call_id: str) -> Call | None:
    return call_rows.get_call(session, call_id)


def list_calls(
    session: Session,
    account_id: str,
    *,
    before: tuple[datetime, str] | None,
    limit: int,
    filters: CallFilter | None = None,
) -> list[Call]:
    """Newest first; `filters` narrows by channel, outcome, period and call id."""
    if account_rows.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    return list(call_rows.list_calls(session, account_id, before, limit, filters or CallFilter()))


def calls_updated_since(
    session: Session, account_id: str, since: datetime, *, limit: int
) -> list[Call]:
    """An account's calls changed at or after `since`, and every active one (live views)."""
    return list(call_rows.calls_updated_since(session, account_id, since, limit))
