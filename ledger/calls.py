"""Calls: authorize (the refusal rule with a hold, contract §2), finalize (the call charge's
ledger write: capture or void, exactly once; also for calls whose workflow was lost), the void
of an authorization that failed, and the reads of call rows. A running call's usage, its
running hold and late usage are `ledger.call_usage`'s.

Authorize, finalize and void are every call's ledger transactions, so like the osmAPI charge
(ledger.api_requests) they are written as plain statements (ledger.repositories.call_charges):
lock the account and read everything the operation needs in one round trip, decide, price and
plan in Python with the ledger's own rules (domain.balance_rules, domain.rating,
ledger.posting.journal_lines, ledger.alerts.crossing_step, ledger.recharge_crossings.recharge_step),
write every row in one statement. They run on the Session's own connection, in its transaction,
or (`authorize_call_async`, `finalize_call_async`: the worker's activities) on an async pool's
connection. The rare cases go through the ORM path (`_authorize_with_session`,
`_finalize_with_session`): an account that needs housekeeping (expired promo, a stale hold), a
call already finalized (a retry, late usage for an orphan-swept call); the async functions
answer None for those, and for a charge that crosses the auto-recharge threshold (its checkout
is recorded through the Session), having written nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from db.models import Account, Call
from domain.balance_rules import plan_debit
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
from domain.rating import Breakdown, RateCard, UsageEvent, UsageLine, UsageTotals, price_usage
from ledger.alerts import crossing_step
from ledger.api_requests import database_key
from ledger.call_usage import (
    apply_late_usage,
    call_breakdown,
    lock_call,
    record_events,
    split_repeats,
    store_breakdown,
    usage_lines,
)
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.holds import call_hold_size, end_call_hold, place_call_hold
from ledger.plain_accounts import AccountRow, PlainAccount
from ledger.policy import LedgerPolicy
from ledger.posting import (
    debit,
    housekeeping,
    journal_lines,
    margin_rate,
    refused,
    request_hash,
    snapshot,
    utcnow,
)
from ledger.rate_cards import current_rate_card, load_rate_card, rate_card_steps
from ledger.recharge_crossings import recharge_step, record_recharge_checkout
from ledger.repositories import accounts as account_rows
from ledger.repositories import call_charges as sql
from ledger.repositories import calls as call_rows
from ledger.repositories.statements import Steps, run_steps, run_steps_async

__all__ = ["call_breakdown"]  # re-exported: the API reads breakdowns from here
# hangup_reason of a call the orphan sweep finalized: its workflow was closed or missing.
ORPHANED_REASON = "workflow_lost"


@dataclass
class _CallRow:
    """A call row as the plain-statement paths read and update it (sql.CALL_COLUMNS)."""

    call_id: str
    account_id: str
    channel: str
    status: str
    authorized: bool
    refusal_reason: str | None
    outcome: str | None
    hangup_reason: str | None
    ended_at: datetime | None
    rejected_event_count: int
    rate_card_version: int | None
    margin_rate: Decimal
    hold_paisa: int
    available_at_authorization_paisa: int
    usage: list[dict[str, Any]]
    usage_event_count: int


def _connection(session: Session) -> psycopg.Connection[Any]:
    """The Session's own psycopg connection, in the Session's transaction."""
    session.flush()
    conn: psycopg.Connection[Any] = session.connection().connection.driver_connection  # type: ignore[assignment]
    return conn


def _decision_from_call(
    call: Call | _CallRow, account: AccountRow, card: RateCard | None
) -> AuthorizeDecision:
    return AuthorizeDecision(
        authorized=call.authorized,
        reason=call.refusal_reason,
        hold_paisa=call.hold_paisa,
        available_paisa=call.available_at_authorization_paisa,
        rate_card_version=call.rate_card_version,
        margin_rate=str(call.margin_rate),
        rate_card=card,
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


def _check_replay(call: Call | _CallRow, account_id: str, channel: str) -> None:
    if call.account_id != account_id or call.channel != channel:
        raise Conflict(f"call {call.call_id} was authorized for another account or channel")


def authorize_call(
    session: Session,
    policy: LedgerPolicy,
    *,
    call_id: str,
    account_id: str,
    channel: str,
    started_at: str | None = None,
    now: datetime | None = None,
    ends_transaction: bool = False,
) -> AuthorizeDecision:
    """The refusal rule of contract §2 with a hold; idempotent on call_id. `ends_transaction`:
    the caller commits right after, so the decision's writes may go with the COMMIT (one round
    trip less)."""
    now = now or utcnow()
    started = _authorize_arguments(call_id, channel, started_at, now)
    conn = _connection(session)
    steps = _authorize_steps(database_key(conn), policy, call_id, account_id, channel, started, now)
    decision = run_steps(conn, steps, commit=lambda d: ends_transaction and d is not None)
    session.expire_all()  # the rows changed under the ORM's feet
    if decision is None:  # housekeeping due: the ORM path settles it first
        return _authorize_with_session(
            session, policy, call_id=call_id, account_id=account_id, channel=channel,
            started=started, now=now,
        )  # fmt: skip
    return decision


async def authorize_call_async(
    conn: psycopg.AsyncConnection[Any],
    policy: LedgerPolicy,
    *,
    call_id: str,
    account_id: str,
    channel: str,
    started_at: str | None = None,
    now: datetime | None = None,
) -> AuthorizeDecision | None:
    """`authorize_call` on an async connection in a transaction (the worker's pool); None: the
    account needs housekeeping, which the Session path (`authorize_call`) does."""
    now = now or utcnow()
    started = _authorize_arguments(call_id, channel, started_at, now)
    steps = _authorize_steps(database_key(conn), policy, call_id, account_id, channel, started, now)
    return await run_steps_async(conn, steps)


def _authorize_arguments(
    call_id: str, channel: str, started_at: str | None, now: datetime
) -> datetime:
    """The call's start time, after the checks every authorization makes."""
    if not call_id or len(call_id) > 200:
        raise ValidationFailed("call_id must be 1 to 200 characters")
    if channel not in {c.value for c in Channel}:
        raise ValidationFailed(f"channel {channel!r} is unknown", code="invalid_channel")
    return _parse_time(started_at, "started_at") or now


def _authorize_steps(
    database: str,
    policy: LedgerPolicy,
    call_id: str,
    account_id: str,
    channel: str,
    started: datetime,
    now: datetime,
) -> Steps[AuthorizeDecision | None]:
    """`authorize_call` as plain statements; None: the account needs housekeeping."""
    account_rows_, (context,) = yield [
        sql.lock_account(account_id),
        sql.authorize_context(account_id, call_id, now),
    ]
    if not account_rows_:
        return AuthorizeDecision(False, REASON_ACCOUNT_NOT_FOUND, 0, 0, None)
    account = PlainAccount(*account_rows_[0])
    *call_columns, card_version, needs_housekeeping = context
    if call_columns[0] is not None:  # a retry: the decision already made
        existing = _CallRow(*call_columns)
        _check_replay(existing, account_id, channel)
        version = existing.rate_card_version
        card = (yield from rate_card_steps(database, version)) if version is not None else None
        return _decision_from_call(existing, account, card)
    if needs_housekeeping:
        return None
    if card_version is None:
        raise NotFound("no rate card is in force")
    card = yield from rate_card_steps(database, card_version)
    authorized = not refused(account)
    hold = call_hold_size(policy, account) if authorized else 0
    # As stored (NUMERIC(8,4)), so a replayed decision is identical to the first one.
    margin = margin_rate(account).quantize(Decimal("0.0001"))
    available = account.paid_paisa + account.promo_paisa
    yield [
        sql.insert_call(
            call_id=call_id,
            account_id=account_id,
            channel=channel,
            authorized=authorized,
            refusal_reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
            outcome=None if authorized else Outcome.REFUSED.value,
            rate_card_version=card.version,
            margin_rate=margin,
            hold_paisa=hold,
            available_paisa=available,
            started_at=started,
            now=now,
            hold_expires_at=started + policy.max_call_duration + policy.hold_grace,
        )
    ]
    account.reserved_paisa += hold
    return AuthorizeDecision(
        authorized=authorized,
        reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
        hold_paisa=hold,
        available_paisa=available,
        rate_card_version=card.version,
        margin_rate=str(margin),
        rate_card=card,
        balance=snapshot(account),
    )


def _authorize_with_session(
    session: Session,
    policy: LedgerPolicy,
    *,
    call_id: str,
    account_id: str,
    channel: str,
    started: datetime,
    now: datetime,
) -> AuthorizeDecision:
    """`authorize_call` through the ORM, housekeeping first."""
    account = account_rows.lock_account(session, account_id)
    if account is None:
        return AuthorizeDecision(False, REASON_ACCOUNT_NOT_FOUND, 0, 0, None)
    existing = call_rows.get_call(session, call_id)
    if existing is not None:
        _check_replay(existing, account_id, channel)
        return _decision_from_call(existing, account, _pinned_card(session, existing))
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
    return _decision_from_call(call, account, card)


def _pinned_card(session: Session, call: Call) -> RateCard | None:
    version = call.rate_card_version
    return load_rate_card(session, version) if version is not None else None


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


def _check_outcome(outcome: str) -> None:
    if outcome not in {o.value for o in Outcome} or outcome == Outcome.REFUSED:
        raise ValidationFailed(f"outcome {outcome!r} is not a final call outcome")


def finalize_call(
    session: Session,
    request: FinalizeCallRequest,
    now: datetime | None = None,
    *,
    ends_transaction: bool = False,
) -> FinalizedCall:
    """Capture (charged outcomes) or void (the rest), release the hold, exactly once.

    With `request.events` the ledger's usage is priced: what checkpoints recorded plus those
    events (recorded once per event id, in this same transaction). `ends_transaction`: the
    caller commits right after (the charge's writes may go with the COMMIT)."""
    now = now or utcnow()
    events = events_from_json(request.events_json or "")
    conn = _connection(session)
    steps = _finalize_steps(database_key(conn), request, events, now, records_recharge=True)
    # Not when a recharge checkout is still to be written in this transaction.
    done = run_steps(
        conn, steps, commit=lambda d: ends_transaction and d is not None and d[1] is None
    )
    session.expire_all()  # the rows changed under the ORM's feet
    if done is None:  # already finalized, or housekeeping due: the ORM path
        return _finalize_with_session(session, request, now)
    finalized, recharge = done
    if recharge is not None:  # the crossing ledger.posting.post would have recorded
        record_recharge_checkout(session, *recharge)
    return finalized


async def finalize_call_async(
    conn: psycopg.AsyncConnection[Any], request: FinalizeCallRequest, now: datetime | None = None
) -> FinalizedCall | None:
    """`finalize_call` on an async connection in a transaction (the worker's pool); None when
    the Session path (`finalize_call`) must do it: the call is finalized already, the account
    needs housekeeping, or the charge crosses the auto-recharge threshold (a checkout to record).
    Nothing is written then."""
    events = events_from_json(request.events_json or "")
    steps = _finalize_steps(
        database_key(conn), request, events, now or utcnow(), records_recharge=False
    )
    done = await run_steps_async(conn, steps)
    return done[0] if done is not None else None


@dataclass
class _Charge:
    """The rows of a call's charge (ledger.posting.debit's, planned in memory)."""

    transaction: tuple[Any, ...]
    entries: list[tuple[Any, ...]]
    lots: list[tuple[int, int]]
    allocations: list[tuple[Any, ...]]
    alert: tuple[str, str, dict[str, Any]] | None
    recharge: tuple[str, int, int] | None  # account, crossing version, paisa


def _plan_charge(
    account: PlainAccount,
    call: _CallRow,
    breakdown: Breakdown,
    transaction_id: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    description: str,
    details: dict[str, Any],
) -> _Charge:
    """`ledger.posting.debit` of the call's total on the (locked) account, in memory: the lots
    that pay it, the new balances and the crossings `posting.post` records."""
    total = breakdown.total_paisa
    lots = account.lots
    plan = plan_debit(total, [(i, r) for i, r in lots["promo"]], [(i, r) for i, r in lots["paid"]])
    remaining = {lot[0]: lot for lot in (*lots["promo"], *lots["paid"])}
    new_remainders: list[tuple[int, int]] = []
    allocations: list[tuple[Any, ...]] = []
    for lot_id, take in plan.takes:
        remaining[lot_id][1] -= take
        new_remainders.append((lot_id, remaining[lot_id][1]))
        allocations.append((transaction_id, lot_id, account.id, "debit", take))
    if plan.overdraft_paisa:
        allocations.append((transaction_id, None, account.id, "overdraft", plan.overdraft_paisa))
    contra = [
        (book, amount)
        for book, amount in (
            ("provider_payable", breakdown.provider_total_paisa),
            ("margin_revenue", breakdown.margin_paisa),
        )
        if amount
    ]
    if -plan.paid_paisa - plan.promo_paisa + sum(amount for _, amount in contra) != 0:
        raise AssertionError("unbalanced journal transaction")
    account.paid_paisa -= plan.paid_paisa
    account.promo_paisa -= plan.promo_paisa
    account.version += 1
    if account.promo_paisa < 0:
        raise AssertionError("promo balance would go negative")
    account.low_balance_armed, alert = crossing_step(account)
    account.auto_recharge_armed, crossed = recharge_step(account)
    recharge = None
    if crossed and account.auto_recharge_amount_paisa:
        recharge = (account.id, account.version, account.auto_recharge_amount_paisa)
    return _Charge(
        transaction=(
            transaction_id, account.id, kind, key, payload_hash, -total, -plan.paid_paisa,
            -plan.promo_paisa, account.paid_paisa, account.promo_paisa,
            account.paid_paisa + account.promo_paisa, call.call_id, description, details,
        ),
        entries=[
            (transaction_id, account.id, book, amount)
            for book, amount in journal_lines(-plan.paid_paisa, -plan.promo_paisa, contra)
        ],
        lots=new_remainders,
        allocations=allocations,
        alert=(alert.account_id, alert.dedupe_key, asdict(alert)) if alert else None,
        recharge=recharge,
    )  # fmt: skip


def _end_hold(account: PlainAccount, hold: list[Any] | None, status: str, now: datetime) -> Any:
    """The call's hold released as `status` if still active (`end_call_hold`): its row."""
    if hold is None or hold[1] != "active":
        return None
    account.reserved_paisa -= hold[2]
    return (hold[0], status, now)


def _call_columns(call: _CallRow, now: datetime, breakdown: Breakdown) -> tuple[Any, ...]:
    """The call row as sql.post_call_end writes it."""
    return (
        call.call_id, call.status, call.authorized, call.refusal_reason, call.outcome,
        call.hangup_reason, call.ended_at, now, now, call.rejected_event_count, call.usage,
        call.usage_event_count, breakdown.llm_paisa, breakdown.stt_paisa, breakdown.tts_paisa,
        breakdown.sip_paisa, breakdown.provider_total_paisa, breakdown.margin_paisa,
        breakdown.total_paisa,
    )  # fmt: skip


def _read_call(
    rows: list[list[Any]], call_id: str
) -> tuple[PlainAccount, _CallRow, dict[str, str], list[Any] | None, bool, int | None]:
    """The rows of sql.lock_call_account and sql.finalize_context: the account (its open lots
    filled in), the call, event id → batch of the events it has, its hold, whether housekeeping
    is due, the transaction id taken."""
    account_rows_, context = rows
    if not account_rows_ or not context:
        raise NotFound(f"call {call_id} not found")
    account = PlainAccount(*account_rows_[0])
    *columns, recorded_by, hold, needs_housekeeping, lots, transaction_id = context[0]
    for lot_id, kind, lot_remaining in lots:
        account.lots[kind].append([lot_id, lot_remaining])
    return account, _CallRow(*columns), recorded_by, hold, needs_housekeeping, transaction_id


def _finalize_steps(
    database: str,
    request: FinalizeCallRequest,
    events: list[UsageEvent],
    now: datetime,
    *,
    records_recharge: bool,
) -> Steps[tuple[FinalizedCall, tuple[str, int, int] | None] | None]:
    """`finalize_call` as plain statements; None: the ORM path decides (the call is already
    finalized, or the account needs housekeeping; without `records_recharge`, also a charge
    that crosses the auto-recharge threshold). Also returns the auto-recharge crossing to
    record (account, version, paisa), if the charge made one."""
    charged = is_charged(request.outcome)
    unique, repeated = split_repeats(events)
    rows = yield [
        sql.lock_call_account(request.call_id),
        sql.finalize_context(request.call_id, list(unique), now, transaction_id=charged),
    ]
    account, call, recorded_by, hold, needs_housekeeping, transaction_id = _read_call(
        rows, request.call_id
    )
    if call.status == "finalized":
        return None
    _check_outcome(request.outcome)
    if needs_housekeeping:
        return None
    assert call.rate_card_version is not None
    card = yield from rate_card_steps(database, call.rate_card_version)
    ended_at = _parse_time(request.ended_at, "ended_at") or now
    duplicates: list[str] = []
    new_events: list[UsageEvent] = []
    if request.events_json is not None:  # `record_events`, on what the context read
        new_events = [event for event_id, event in unique.items() if event_id not in recorded_by]
        duplicates = repeated + [
            event_id
            for event_id in unique
            if event_id in recorded_by and recorded_by[event_id] != request.batch
        ]
        if new_events:
            totals = UsageTotals([UsageLine(**line) for line in call.usage or []])
            for event in new_events:
                totals.add(event)
            call.usage = [asdict(line) for line in totals.lines]
            call.usage_event_count = (call.usage_event_count or 0) + len(new_events)
    else:  # a workflow from before the ledger kept usage: its own totals
        call.usage = [line.__dict__ for line in request.usage]
        call.usage_event_count = request.usage_event_count
    lines = [UsageLine(**line) for line in call.usage or []]
    priced = price_usage(lines, card, call.margin_rate)
    breakdown = priced if charged else Breakdown.zero(call.margin_rate)
    call.status = "finalized"
    call.outcome = request.outcome
    call.hangup_reason = request.hangup_reason
    call.ended_at = ended_at
    call.rejected_event_count = request.rejected_event_count
    charge: _Charge | None = None
    if charged and breakdown.total_paisa > 0:
        assert transaction_id is not None
        charge = _plan_charge(
            account,
            call,
            breakdown,
            transaction_id,
            kind="call_charge",
            key=f"call:{call.call_id}:charge",
            payload_hash=request_hash({"call_id": call.call_id}),
            description=f"{call.channel.capitalize()} call ({request.outcome})",
            details={"breakdown": breakdown.__dict__, "channel": call.channel},
        )
        if charge.recharge is not None and not records_recharge:
            return None
    hold_row = _end_hold(account, hold, "captured" if charged else "voided", now)
    yield [
        sql.post_call_end(
            call=_call_columns(call, now, breakdown),
            account=_account_columns(account),
            hold=hold_row,
            events=[
                (e.event_id, e.component, e.sku, e.quantities, e.occurred_at) for e in new_events
            ],
            batch=request.batch,
            transaction=charge.transaction if charge else None,
            entries=charge.entries if charge else [],
            lots=charge.lots if charge else [],
            allocations=charge.allocations if charge else [],
            alerts=[charge.alert] if charge and charge.alert else [],
        )
    ]
    return FinalizedCall(
        call_id=call.call_id,
        account_id=call.account_id,
        outcome=request.outcome,
        charged=charge is not None,
        breakdown=Breakdown(
            **{**breakdown.__dict__, "margin_rate": str(call.margin_rate)}  # as call_breakdown
        ),
        transaction_id=transaction_id if charge else None,
        balance=snapshot(account),
        usage=lines,
        usage_event_count=call.usage_event_count,
        duplicate_event_ids=duplicates,
    ), charge.recharge if charge else None


def _account_columns(account: PlainAccount) -> tuple[Any, ...]:
    """The account as sql.post_call_end writes it (the arming flags as read or as changed)."""
    return (
        account.id, account.paid_paisa, account.promo_paisa, account.reserved_paisa,
        account.version, account.low_balance_armed, account.auto_recharge_armed,
    )  # fmt: skip


def _finalize_with_session(
    session: Session, request: FinalizeCallRequest, now: datetime
) -> FinalizedCall:
    """`finalize_call` through the ORM: a call finalized already, or housekeeping due."""
    account, call = lock_call(session, request.call_id)
    if call.status == "finalized":
        events = events_from_json(request.events_json or "")
        if events:  # finalized by the orphan sweep meanwhile: the rest is still owed
            apply_late_usage(session, account, call, events, batch=request.batch)
        return _finalized_view(call, account)  # the first finalization wins
    _check_outcome(request.outcome)
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
    voided = run_steps(_connection(session), _void_steps(call_id, reason, now or utcnow()))
    session.expire_all()  # the rows changed under the ORM's feet
    return voided


def _void_steps(call_id: str, reason: str, now: datetime) -> Steps[bool]:
    rows = yield [
        sql.lock_call_account(call_id),
        sql.finalize_context(call_id, [], now, transaction_id=False),
    ]
    if not rows[0] or not rows[1]:
        return False
    account, call, _, hold, _, _ = _read_call(rows, call_id)
    if call.status == "finalized":
        return False
    call.status = "finalized"
    call.authorized = False
    call.refusal_reason = reason
    call.outcome = Outcome.REFUSED.value
    hold_row = _end_hold(account, hold, "voided", now)
    yield [
        sql.post_call_end(
            call=_call_columns(call, now, Breakdown.zero(call.margin_rate)),
            account=_account_columns(account),
            hold=hold_row,
            events=[],
            batch="",
            transaction=None,
            entries=[],
            lots=[],
            allocations=[],
            alerts=[],
        )
    ]
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
