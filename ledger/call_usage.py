"""A call's usage in the ledger: events recorded once per (call, event id), the running totals
on the call row, the hold that follows the running cost (contract §2), and late usage after the
call ended, charged as a `call_adjustment` (contract §3).

Every function here works inside the caller's transaction, with the account row locked first
and then the call row (the order every call operation uses)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from db.models import Account, Call
from domain.balance_rules import running_hold_paisa
from domain.channels import is_charged
from domain.contracts.call_usage import (
    CheckpointedUsage,
    LateUsageResult,
    UsageCheckpoint,
    events_to_json,
)
from domain.contracts.calls import CallBreakdown
from domain.ledger_types import BalanceSnapshot
from domain.rating import (
    Breakdown,
    RatingError,
    UsageEvent,
    UsageLine,
    UsageTotals,
    price_usage,
    validate_usage_event,
)
from ledger import rate_cards
from ledger.api_requests import database_key
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.holds import call_hold_reference
from ledger.plain_accounts import PlainAccount
from ledger.posting import debit, request_hash, require_account, snapshot, utcnow
from ledger.rate_cards import load_rate_card
from ledger.recharge_crossings import recharge_step, record_recharge_checkout
from ledger.repositories import call_checkpoints as checkpoint_sql
from ledger.repositories import call_usage as usage_rows
from ledger.repositories import calls as call_rows
from ledger.repositories import journal
from ledger.repositories.statements import Steps, run_steps, run_steps_async


@dataclass(frozen=True)
class Recorded:
    inserted: list[UsageEvent]  # new to the ledger: added to the call's totals now
    mine: list[str]  # recorded by an earlier attempt of this same batch (a retry)
    duplicates: list[str]  # the call already had them from another report


def lock_call(session: Session, call_id: str) -> tuple[Account, Call]:
    """The call's account, then the call itself, both locked."""
    peek = call_rows.get_call(session, call_id)
    if peek is None:
        raise NotFound(f"call {call_id} not found")
    account = require_account(session, peek.account_id)
    call = call_rows.get_call(session, call_id, lock=True)
    assert call is not None
    return account, call


def split_repeats(events: Iterable[UsageEvent]) -> tuple[dict[str, UsageEvent], list[str]]:
    """Events by id, first occurrence kept, and the ids repeated within the same report."""
    unique: dict[str, UsageEvent] = {}
    repeated: list[str] = []
    for event in events:
        if event.event_id in unique:
            repeated.append(event.event_id)
        else:
            unique[event.event_id] = event
    return unique, repeated


def record_events(
    session: Session, call: Call, events: Sequence[UsageEvent], *, batch: str, phase: str
) -> Recorded:
    """Record events once per (call, event id) and add the new ones to the call's totals."""
    unique, repeated = split_repeats(events)
    inserted_ids = usage_rows.insert_new_events(
        session, call.call_id, list(unique.values()), batch=batch, phase=phase
    )
    others = [event_id for event_id in unique if event_id not in inserted_ids]
    recorded_by = usage_rows.batches_of(session, call.call_id, others)
    inserted = [event for event_id, event in unique.items() if event_id in inserted_ids]
    if inserted:
        totals = UsageTotals(usage_lines(call))
        for event in inserted:
            totals.add(event)
        call.usage = [asdict(line) for line in totals.lines]
        call.usage_event_count = (call.usage_event_count or 0) + len(inserted)
    return Recorded(
        inserted=inserted,
        mine=[event_id for event_id in others if recorded_by.get(event_id) == batch],
        duplicates=repeated + [e for e in others if recorded_by.get(e) != batch],
    )


def usage_lines(call: Call) -> list[UsageLine]:
    return [UsageLine(**line) for line in call.usage or []]


def store_breakdown(call: Call, breakdown: Breakdown) -> None:
    call.llm_paisa = breakdown.llm_paisa
    call.stt_paisa = breakdown.stt_paisa
    call.tts_paisa = breakdown.tts_paisa
    call.sip_paisa = breakdown.sip_paisa
    call.provider_total_paisa = breakdown.provider_total_paisa
    call.margin_paisa = breakdown.margin_paisa
    call.total_paisa = breakdown.total_paisa


def call_breakdown(call: Call) -> Breakdown:
    return Breakdown(
        llm_paisa=call.llm_paisa or 0,
        stt_paisa=call.stt_paisa or 0,
        tts_paisa=call.tts_paisa or 0,
        sip_paisa=call.sip_paisa or 0,
        provider_total_paisa=call.provider_total_paisa or 0,
        margin_paisa=call.margin_paisa or 0,
        total_paisa=call.total_paisa or 0,
        margin_rate=str(call.margin_rate),
    )


def price_call(session: Session, call: Call) -> Breakdown:
    """The call's usage so far, priced with its pinned rate card and margin."""
    assert call.rate_card_version is not None
    card = load_rate_card(session, call.rate_card_version)
    return price_usage(usage_lines(call), card, call.margin_rate)


class _SessionPath(Exception):
    """The plain statements stop before writing anything: the Session path does it."""


class _CallFinalized(_SessionPath):
    """The call was finalized meanwhile: its usage is late usage."""


class _RechargeToRecord(_SessionPath):
    """The raised hold crosses the auto-recharge threshold: a checkout to record."""


@dataclass(frozen=True)
class Checkpointed:
    """`checkpoint_usage`'s outcome, and what the caller does after the commit."""

    result: CheckpointedUsage
    balance: BalanceSnapshot
    # An auto-recharge crossing was recorded: hand it over after the commit. Nothing else a
    # live checkpoint does can cross anything (available does not move, only reserved).
    recharge_recorded: bool = False


@dataclass
class _Plan:
    result: CheckpointedUsage
    account: PlainAccount
    recharge_crossed: bool


def _checkpoint_steps(
    request: UsageCheckpoint, now: datetime, database: str, *, records_recharge: bool
) -> Steps[_Plan]:
    """A live checkpoint in two round trips: lock and read (sql.lock_checkpoint), price and
    follow the running cost in Python with the ledger's rules, write (sql.write_checkpoint).
    Exactly what `record_events` + `price_call` + the hold rule do on ORM rows. Without
    `records_recharge` an auto-recharge crossing raises `_RechargeToRecord` before writing."""
    unique, repeated = split_repeats(request.usage_events())
    account_rows, call_rows_, hold_rows_ = yield checkpoint_sql.lock_checkpoint(
        request.call_id, call_hold_reference(request.call_id), list(unique)
    )
    if not account_rows or not call_rows_:
        raise NotFound(f"call {request.call_id} not found")
    account = PlainAccount(*account_rows[0])
    status, version, margin, authorized_hold, usage, count, recorded_by = call_rows_[0]
    if status == "finalized":
        raise _CallFinalized
    assert version is not None
    card = yield from rate_cards.rate_card_steps(database, version)
    new = [event for event_id, event in unique.items() if event_id not in recorded_by]
    lines = [UsageLine(**line) for line in usage or []]
    if new:
        totals = UsageTotals(lines)
        for event in new:
            totals.add(event)
        lines = totals.lines
        count = (count or 0) + len(new)
    running = price_usage(lines, card, margin)
    # The hold follows the running cost (domain.balance_rules.running_hold_paisa); a hold the
    # stale-hold sweep expired means the call is lost: nothing to follow.
    hold_now, hold_write, account_write, crossed = 0, None, None, False
    if hold_rows_ and hold_rows_[0][1] == "active":
        hold_id, _, amount = hold_rows_[0]
        hold_now = running_hold_paisa(
            authorized_hold_paisa=authorized_hold,
            running_total_paisa=running.total_paisa,
            min_balance_paisa=account.min_balance_paisa,
        )
        if hold_now != amount:
            account.reserved_paisa += hold_now - amount
            hold_write = (hold_id, hold_now)
            if hold_now > amount:  # available − reserved fell: maybe an auto-recharge crossing
                account.auto_recharge_armed, crossed = recharge_step(account)
            account_write = (account.id, account.reserved_paisa, account.auto_recharge_armed)
    if crossed and not records_recharge:
        raise _RechargeToRecord
    if new or hold_write is not None:
        yield [
            checkpoint_sql.write_checkpoint(
                call_id=request.call_id,
                batch=request.batch,
                events=[(e.event_id, e.component, e.sku, e.quantities, e.occurred_at) for e in new],
                usage=[asdict(line) for line in lines] if new else None,
                usage_event_count=count,
                now=now,
                hold=hold_write,
                account=account_write,
            )
        ]
    return _Plan(
        CheckpointedUsage(
            usage=lines,
            usage_event_count=count,
            duplicate_event_ids=repeated
            + [e for e in unique if e in recorded_by and recorded_by[e] != request.batch],
            running_total_paisa=running.total_paisa,
            hold_paisa=hold_now,
        ),
        account,
        crossed,
    )


def checkpoint_usage(
    session: Session,
    request: UsageCheckpoint,
    now: datetime | None = None,
    *,
    ends_transaction: bool = False,
) -> Checkpointed:
    """A running call's usage checkpoint: record the events once per (call, event id), move the
    hold with the cost. One small transaction; a retry of a committed attempt changes nothing.

    The live call's path is plain statements on the session's connection (it runs every second
    of every call); a call finalized meanwhile takes the Session path of late usage.
    `ends_transaction`: the caller commits right after (the writes may go with the COMMIT)."""
    now = now or utcnow()
    session.flush()
    conn: psycopg.Connection[Any] = session.connection().connection.driver_connection  # type: ignore[assignment]
    try:
        plan = run_steps(
            conn,
            _checkpoint_steps(request, now, database_key(conn), records_recharge=True),
            # Not when a recharge checkout is still to be written in this transaction.
            commit=lambda plan: ends_transaction and not plan.recharge_crossed,
        )
    except _CallFinalized:
        return _checkpoint_finalized(session, request)
    session.expire_all()  # the rows changed under the ORM's feet (report_late_usage's call)
    account = plan.account
    recorded = False
    if plan.recharge_crossed:
        assert account.auto_recharge_amount_paisa
        checkout = record_recharge_checkout(
            session, account.id, account.version, account.auto_recharge_amount_paisa
        )
        recorded = checkout is not None
    return Checkpointed(plan.result, snapshot(account), recorded)


async def checkpoint_usage_async(
    conn: psycopg.AsyncConnection[Any], request: UsageCheckpoint, now: datetime | None = None
) -> Checkpointed | None:
    """`checkpoint_usage` on an async connection in a transaction (the worker's pool); None
    when the Session path (`checkpoint_usage`) must do it: the call was finalized meanwhile, or
    the raised hold crosses the auto-recharge threshold. Nothing is written then."""
    steps = _checkpoint_steps(request, now or utcnow(), database_key(conn), records_recharge=False)
    try:
        plan = await run_steps_async(conn, steps)
    except _SessionPath:
        return None
    return Checkpointed(plan.result, snapshot(plan.account))


def _checkpoint_finalized(session: Session, request: UsageCheckpoint) -> Checkpointed:
    """Finalized meanwhile (the orphan sweep): what the call reported while it ran is still
    owed, so it is charged as late usage whatever the window."""
    account, call = lock_call(session, request.call_id)
    late = apply_late_usage(session, account, call, request.usage_events(), batch=request.batch)
    return Checkpointed(
        CheckpointedUsage(
            usage=late.usage,
            usage_event_count=late.usage_event_count,
            duplicate_event_ids=[],
            running_total_paisa=late.breakdown.total_paisa,
            hold_paisa=0,
            finalized=True,
        ),
        snapshot(account),
    )


def _adjustment_key(call_id: str, first_event_id: str) -> str:
    return f"call:{call_id}:adjust:{first_event_id}"


def apply_late_usage(
    session: Session, account: Account, call: Call, events: Sequence[UsageEvent], *, batch: str
) -> LateUsageResult:
    """Record usage of a finalized call and post what it adds: the call re-priced over all its
    usage with its pinned card, less what it was charged so far, as one `call_adjustment`
    (idempotent: each event id is recorded once, and the key names the first new event)."""
    recorded = record_events(session, call, events, batch=batch, phase="late")
    adjustment = 0
    transaction_id: int | None = None
    if recorded.inserted and is_charged(call.outcome or ""):
        before = call_breakdown(call)
        after = price_call(session, call)
        adjustment = after.total_paisa - before.total_paisa
        assert adjustment >= 0, "more usage never costs less"
        store_breakdown(call, after)
        if adjustment:
            event_ids = [event.event_id for event in recorded.inserted]
            transaction = debit(
                session,
                account,
                adjustment,
                kind="call_adjustment",
                key=_adjustment_key(call.call_id, event_ids[0]),
                payload_hash=request_hash({"call_id": call.call_id, "events": event_ids}),
                contra=[
                    ("provider_payable", after.provider_total_paisa - before.provider_total_paisa),
                    ("margin_revenue", after.margin_paisa - before.margin_paisa),
                ],
                reference=call.call_id,
                description=f"{call.channel.capitalize()} call: late usage",
                details={
                    "breakdown": after.__dict__,
                    "breakdown_before": before.__dict__,
                    "channel": call.channel,
                    "event_ids": event_ids[:100],
                },
            )
            transaction_id = transaction.id
    elif recorded.mine:  # a retry whose first attempt committed: report that attempt
        key = _adjustment_key(call.call_id, recorded.mine[0])
        posted = journal.transaction_by_key(session, key)
        if posted is not None:
            adjustment, transaction_id = -posted.amount_paisa, posted.id
    if recorded.inserted:
        call.updated_at = utcnow()
    return LateUsageResult(
        call_id=call.call_id,
        accepted=len(recorded.inserted) + len(recorded.mine),
        duplicate_event_count=len(recorded.duplicates),
        adjustment_paisa=adjustment,
        transaction_id=transaction_id,
        breakdown=CallBreakdown.of(call_breakdown(call)),
        usage=usage_lines(call),
        usage_event_count=call.usage_event_count,
    )


def validate_call_events(session: Session, call: Call, raw: Sequence[object]) -> list[UsageEvent]:
    """Raw usage events checked against the call's channel and pinned card; one bad event
    refuses them all (422 with the domain's code), so nothing is half recorded."""
    if call.rate_card_version is None or not call.authorized:
        raise Conflict(f"call {call.call_id} was never authorized", code="call_ended")
    card = load_rate_card(session, call.rate_card_version)
    events: list[UsageEvent] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValidationFailed(f"events[{index}] must be an object")
        try:
            events.append(validate_usage_event(item, call.channel, card))
        except RatingError as exc:
            raise ValidationFailed(f"events[{index}]: {exc.message}", code=exc.code) from exc
    return events


def report_late_usage(
    session: Session,
    call_id: str,
    raw_events: Sequence[object],
    *,
    window: timedelta,
    batch: str,
    now: datetime | None = None,
) -> tuple[LateUsageResult, Account]:
    """Usage reported after the call's workflow ended (contract §3): within `window` of the
    hangup an adjustment; after it, 409 `call_ended`. A call the ledger still has in progress
    (its workflow was lost) takes it as a checkpoint: the orphan sweep charges it."""
    now = now or utcnow()
    account, call = lock_call(session, call_id)
    events = validate_call_events(session, call, raw_events)
    if call.status != "finalized":
        request = UsageCheckpoint(call_id, batch, events_to_json(events))
        checkpoint = checkpoint_usage(session, request, now).result
        return LateUsageResult(
            call_id=call_id,
            accepted=len(events) - len(checkpoint.duplicate_event_ids),
            duplicate_event_count=len(checkpoint.duplicate_event_ids),
            adjustment_paisa=0,
            transaction_id=None,
            breakdown=CallBreakdown.of(price_call(session, call)),
            usage=checkpoint.usage,
            usage_event_count=checkpoint.usage_event_count,
        ), account
    ended = call.ended_at or call.finalized_at or now
    if now > ended + window:
        raise Conflict(
            f"call {call_id} ended at {ended.isoformat()}: late usage is taken for "
            f"{int(window.total_seconds())} s after the hangup",
            code="call_ended",
        )
    return apply_late_usage(session, account, call, events, batch=batch), account
