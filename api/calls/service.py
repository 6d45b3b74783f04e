"""Calls go through the Temporal workflow (orchestrator_client); finalized calls are read from
the `calls` table, active ones are completed with the workflow's `status` query."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from api.calls.schemas import BreakdownOut, CallOut, UsageEventIn, UsageLineOut, usage_lines
from api.deps import BillingState, run_db
from db.models import Call
from domain.contracts import CallState
from domain.contracts.call_usage import LateUsageResult
from domain.contracts.calls import CallStatus
from domain.history import CallFilter
from domain.ledger_types import BalanceSnapshot
from domain.rating import RateCard, validate_usage_event
from ledger import accounts, call_usage, rate_cards
from ledger import calls as ledger_calls
from ledger.errors import Conflict, ValidationFailed
from ledger.posting import snapshot
from orchestrator_client import CallNotFound

log = logging.getLogger("api.calls")


@dataclass(frozen=True)
class CallContext:
    call_id: str
    account_id: str
    channel: str
    status: str
    authorized: bool
    outcome: str | None
    rate_card: RateCard | None


def call_out(call: Call) -> CallOut:
    return CallOut(
        call_id=call.call_id,
        account_id=call.account_id,
        channel=call.channel,
        status="finalized" if call.status == CallState.FINALIZED else "active",
        authorized=call.authorized,
        refusal_reason=call.refusal_reason,
        outcome=call.outcome,
        hangup_reason=call.hangup_reason,
        rate_card_version=call.rate_card_version,
        margin_rate=str(call.margin_rate),
        started_at=call.started_at,
        ended_at=call.ended_at,
        finalized_at=call.finalized_at,
        usage=usage_lines(call.usage),
        usage_event_count=call.usage_event_count,
        breakdown=BreakdownOut.model_validate(
            ledger_calls.call_breakdown(call), from_attributes=True
        ),
    )


def precheck_authorize(session: Session, call_id: str, account_id: str, channel: str) -> None:
    """Unknown accounts are 404 and a reused call_id with other terms is 409, before Temporal."""
    accounts.get_account(session, account_id)  # NotFound for an unknown account
    existing = ledger_calls.find_call(session, call_id)
    if existing is not None and (existing.account_id != account_id or existing.channel != channel):
        raise Conflict(f"call {call_id} was authorized for another account or channel")


def call_context(session: Session, call_id: str) -> CallContext:
    call = ledger_calls.get_call(session, call_id)
    card = (
        rate_cards.load_rate_card(session, call.rate_card_version)
        if call.rate_card_version is not None
        else None
    )
    return CallContext(
        call_id=call.call_id,
        account_id=call.account_id,
        channel=call.channel,
        status=call.status,
        authorized=call.authorized,
        outcome=call.outcome,
        rate_card=card,
    )


def validate_usage(context: CallContext, events: list[UsageEventIn]) -> list[dict[str, Any]]:
    """Check every event against the call's channel and pinned rate card (422 with the
    domain's code: unknown_sku, invalid_component, validation_error); nothing is sent unless
    all are valid. A refused call takes none (409 call_ended)."""
    if not context.authorized or context.rate_card is None:
        raise Conflict(f"call {context.call_id} has already ended", code="call_ended")
    raw_events: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        raw = event.model_dump(mode="json", exclude_none=True)
        try:
            validate_usage_event(raw, context.channel, context.rate_card)
        except ValueError as exc:
            code = getattr(exc, "code", "validation_error")
            raise ValidationFailed(f"events[{index}]: {exc}", code=code) from exc
        raw_events.append(raw)
    return raw_events


def late_usage(
    session: Session,
    call_id: str,
    raw_events: list[dict[str, Any]],
    window: timedelta,
) -> tuple[LateUsageResult, BalanceSnapshot]:
    """Usage for a finalized call (contract §3): the adjustment within the window, else 409
    call_ended. Each request is its own batch; repeated event ids change nothing."""
    result, account = call_usage.report_late_usage(
        session, call_id, raw_events, window=window, batch=f"http:{uuid.uuid4().hex}"
    )
    return result, snapshot(account)


def merge_status(out: CallOut, status: CallStatus) -> CallOut:
    """Fill an active call's running usage and breakdown from the workflow's status query."""
    return out.model_copy(
        update={
            "usage": [UsageLineOut(**asdict(line)) for line in status.usage],
            "breakdown": BreakdownOut(**asdict(status.breakdown)),
            "usage_event_count": status.usage_event_count,
        }
    )


def encode_call_cursor(created_at: datetime, call_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), call_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_call_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, call_id = json.loads(raw)
        return datetime.fromisoformat(created), str(call_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed("cursor is not valid") from exc


def calls_page(
    session: Session,
    account_id: str,
    cursor: str | None,
    limit: int,
    filters: CallFilter | None = None,
) -> tuple[list[Call], str | None]:
    """One page of an account's calls, newest first, and the cursor of the next page."""
    before = decode_call_cursor(cursor) if cursor else None
    rows = ledger_calls.list_calls(
        session, account_id, before=before, limit=limit + 1, filters=filters
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_call_cursor(rows[-1].created_at, rows[-1].call_id) if more else None
    return rows, next_cursor


def list_calls(
    session: Session,
    account_id: str,
    cursor: str | None,
    limit: int,
    filters: CallFilter | None = None,
) -> tuple[list[CallOut], str | None]:
    rows, next_cursor = calls_page(session, account_id, cursor, limit, filters)
    return [call_out(c) for c in rows], next_cursor


def duration_seconds(call: Call, now: datetime) -> int:
    """Talk time: start to end; so far for an active call; 0 for a refused one."""
    started = call.started_at or call.created_at
    if call.status == CallState.ACTIVE:
        return max(0, int((now - started).total_seconds()))
    end = call.ended_at or call.finalized_at
    if end is None or not call.authorized:
        return 0
    return max(0, int((end - started).total_seconds()))


async def workflow_status(state: BillingState, call_id: str, timeout: float) -> CallStatus | None:
    """The call workflow's `status` query (usage so far, running breakdown); None when there
    is no Temporal, no workflow, or no answer in time: the stored row is still an answer."""
    if state.temporal_client is None:
        return None
    try:
        return await asyncio.wait_for(state.billing_client().status(call_id), timeout)
    except CallNotFound:
        return None
    except Exception:  # the call may just have ended, or the worker is busy
        log.warning("status query failed for %s", call_id, exc_info=True)
        return None


@dataclass(frozen=True)
class CallRead:
    """A call's row and, while it is active, its workflow's running status (if it answered)."""

    call: Call
    running: CallStatus | None

    def out(self) -> CallOut:
        out = call_out(self.call)
        return merge_status(out, self.running) if self.running is not None else out


async def read_call(state: BillingState, call_id: str, *, timeout: float) -> CallRead:
    """`GET /v1/calls/{id}` and the dashboard's breakdown: the ledger row, completed with the
    workflow's running status for an active call (NotFound for an unknown call)."""
    factory = state.session_factory
    call = await run_db(factory, lambda s: ledger_calls.get_call(s, call_id))
    if call.status != CallState.ACTIVE:
        return CallRead(call, None)
    status = await workflow_status(state, call_id, timeout)
    if status is not None and status.state == CallState.FINALIZED:
        # The workflow finalized between the two reads: the ledger's row is the answer.
        call = await run_db(factory, lambda s: ledger_calls.get_call(s, call_id))
        return CallRead(call, None)
    return CallRead(call, status)
