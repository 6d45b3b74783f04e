"""Ledger operations. Each is one database transaction (the caller commits, through
`db.session.run_in_transaction`), idempotent on its natural key by a unique constraint, and
locks the account row first so everything on one account is serialized.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from db.models import (
    Account,
    ApiKey,
    ApiRequest,
    Call,
    Coupon,
    CouponRedemption,
    CreditLot,
    Hold,
    JournalEntry,
    LedgerTransaction,
    LotAllocation,
    RateCardPrice,
    RateCardVersion,
    Refund,
)
from domain.channels import Channel, Component, Outcome, is_charged
from domain.ledger_types import (
    REASON_ACCOUNT_NOT_FOUND,
    REASON_INSUFFICIENT_BALANCE,
    AuthorizeDecision,
    BalanceSnapshot,
    FinalizeCallRequest,
    FinalizedCall,
)
from domain.rating import (
    DEFAULT_MARGIN_RATE,
    Breakdown,
    RateCard,
    RatingError,
    UnitPrice,
    UsageEvent,
    UsageLine,
    UsageTotals,
    price_usage,
    validate_margin_rate,
    validate_rate_card_prices,
)
from ledger import repository as repo
from ledger.errors import (
    Conflict,
    InvalidCoupon,
    NotFound,
    RefundNotAllowed,
    ValidationFailed,
)

BILLING_TZ = ZoneInfo("Asia/Kolkata")
MAX_AMOUNT_PAISA = 10_000_000_00  # ₹1 crore in one operation is already absurd for prepaid
API_KEY_PREFIX = "osk_"


@dataclass(frozen=True)
class LedgerPolicy:
    """Knobs from settings that the operations need; passed in so the service stays pure."""

    min_balance_paisa: int = 1000
    welcome_promo_paisa: int = 5000
    call_hold_paisa: int | None = None
    max_call_duration: timedelta = timedelta(hours=4)
    hold_grace: timedelta = timedelta(minutes=15)


def utcnow() -> datetime:
    return datetime.now(UTC)


def request_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode()
    ).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _check_amount(amount_paisa: int, field: str = "amount_paisa") -> None:
    if isinstance(amount_paisa, bool) or not isinstance(amount_paisa, int):
        raise ValidationFailed(f"{field} must be an integer number of paisa")
    if amount_paisa <= 0 or amount_paisa > MAX_AMOUNT_PAISA:
        raise ValidationFailed(f"{field} must be between 1 and {MAX_AMOUNT_PAISA}")


def snapshot(account: Account) -> BalanceSnapshot:
    return BalanceSnapshot(
        account_id=account.id,
        paid_paisa=account.paid_paisa,
        promo_paisa=account.promo_paisa,
        reserved_paisa=account.reserved_paisa,
        min_balance_paisa=account.min_balance_paisa,
        alert_threshold_paisa=(
            account.alert_threshold_paisa
            if account.alert_threshold_paisa is not None
            else account.min_balance_paisa
        ),
        version=account.version,
    )


def _margin_rate(account: Account) -> Decimal:
    return account.margin_rate if account.margin_rate is not None else DEFAULT_MARGIN_RATE


def _require_account(session: Session, account_id: str) -> Account:
    account = repo.lock_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


def _replay(session: Session, key: str, payload_hash: str) -> LedgerTransaction | None:
    existing = repo.transaction_by_key(session, key)
    if existing is not None and existing.request_hash != payload_hash:
        raise Conflict(f"idempotency key {key!r} was used with a different request")
    return existing


# --- posting -------------------------------------------------------------------------------


def _post(
    session: Session,
    account: Account,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    paid_delta: int,
    promo_delta: int,
    contra: Iterable[tuple[str, int]],
    reference: str | None,
    description: str,
    details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction: customer books move by the deltas, the contra (system)
    entries take the other side. The account row must already be locked."""
    contra_entries = [(book, amount) for book, amount in contra if amount]
    if paid_delta + promo_delta + sum(a for _, a in contra_entries) != 0:
        raise AssertionError("unbalanced journal transaction")
    if account.promo_paisa + promo_delta < 0:
        raise AssertionError("promo balance would go negative")
    account.paid_paisa += paid_delta
    account.promo_paisa += promo_delta
    account.version += 1
    transaction = LedgerTransaction(
        account_id=account.id,
        kind=kind,
        idempotency_key=key,
        request_hash=payload_hash,
        amount_paisa=paid_delta + promo_delta,
        paid_delta_paisa=paid_delta,
        promo_delta_paisa=promo_delta,
        paid_balance_after=account.paid_paisa,
        promo_balance_after=account.promo_paisa,
        balance_after=account.paid_paisa + account.promo_paisa,
        reference=reference,
        description=description,
        details=details or {},
    )
    session.add(transaction)
    session.flush()
    entries = [("customer_paid", paid_delta), ("customer_promo", promo_delta), *contra_entries]
    session.add_all(
        JournalEntry(
            transaction_id=transaction.id, account_id=account.id, book=book, amount_paisa=amount
        )
        for book, amount in entries
        if amount
    )
    return transaction


def _credit_paid(
    session: Session,
    account: Account,
    amount: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    contra_book: str,
    reference: str | None,
    description: str,
) -> LedgerTransaction:
    """Add paid credit as a new lot; if paid was below zero, the lot first settles that."""
    overdraft = max(0, -account.paid_paisa)
    transaction = _post(
        session,
        account,
        kind=kind,
        key=key,
        payload_hash=payload_hash,
        paid_delta=amount,
        promo_delta=0,
        contra=[(contra_book, -amount)],
        reference=reference,
        description=description,
    )
    settled = min(overdraft, amount)
    lot = CreditLot(
        account_id=account.id,
        kind="paid",
        transaction_id=transaction.id,
        original_paisa=amount,
        remaining_paisa=amount - settled,
    )
    session.add(lot)
    session.flush()
    if settled:
        session.add(
            LotAllocation(
                transaction_id=transaction.id,
                lot_id=lot.id,
                account_id=account.id,
                kind="settlement",
                amount_paisa=settled,
            )
        )
    return transaction


def _credit_promo(
    session: Session,
    account: Account,
    amount: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    reference: str | None,
    description: str,
    expires_at: datetime | None,
) -> LedgerTransaction:
    transaction = _post(
        session,
        account,
        kind=kind,
        key=key,
        payload_hash=payload_hash,
        paid_delta=0,
        promo_delta=amount,
        contra=[("promo_expense", -amount)],
        reference=reference,
        description=description,
        details={"promo_expires_at": expires_at.isoformat()} if expires_at else None,
    )
    session.add(
        CreditLot(
            account_id=account.id,
            kind="promo",
            transaction_id=transaction.id,
            original_paisa=amount,
            remaining_paisa=amount,
            expires_at=expires_at,
        )
    )
    return transaction


def _plan_debit(
    session: Session, account: Account, amount: int, *, promo_allowed: bool
) -> tuple[list[tuple[CreditLot, int]], int, int, int]:
    """Promo lots first, then paid lots, oldest first; what no lot covers is overdraft.
    Returns (lot takes, promo part, paid part, overdraft part)."""
    takes: list[tuple[CreditLot, int]] = []
    left = amount
    promo_part = 0
    if promo_allowed:
        for lot in repo.open_lots(session, account.id, "promo"):
            if left == 0:
                break
            take = min(lot.remaining_paisa, left)
            takes.append((lot, take))
            promo_part += take
            left -= take
    for lot in repo.open_lots(session, account.id, "paid"):
        if left == 0:
            break
        take = min(lot.remaining_paisa, left)
        takes.append((lot, take))
        left -= take
    return takes, promo_part, amount - promo_part, left


def _debit(
    session: Session,
    account: Account,
    amount: int,
    *,
    kind: str,
    key: str,
    payload_hash: str,
    contra: list[tuple[str, int]],
    reference: str | None,
    description: str,
    details: dict[str, Any] | None = None,
    promo_allowed: bool = True,
) -> LedgerTransaction:
    takes, promo_part, paid_part, overdraft = _plan_debit(
        session, account, amount, promo_allowed=promo_allowed
    )
    transaction = _post(
        session,
        account,
        kind=kind,
        key=key,
        payload_hash=payload_hash,
        paid_delta=-paid_part,
        promo_delta=-promo_part,
        contra=contra,
        reference=reference,
        description=description,
        details=details,
    )
    for lot, take in takes:
        lot.remaining_paisa -= take
        session.add(
            LotAllocation(
                transaction_id=transaction.id,
                lot_id=lot.id,
                account_id=account.id,
                kind="debit",
                amount_paisa=take,
            )
        )
    if overdraft:
        session.add(
            LotAllocation(
                transaction_id=transaction.id,
                lot_id=None,
                account_id=account.id,
                kind="overdraft",
                amount_paisa=overdraft,
            )
        )
    return transaction


def _housekeeping(session: Session, account: Account, now: datetime) -> None:
    """Expire promo lots past their date and release holds of calls lost for good."""
    for lot in repo.expired_promo_lots(session, account.id, now):
        amount = lot.remaining_paisa
        expiry = _post(
            session,
            account,
            kind="promo_expiry",
            key=f"promo-expiry:{lot.id}",
            payload_hash=request_hash({"lot": lot.id}),
            paid_delta=0,
            promo_delta=-amount,
            contra=[("promo_expense", amount)],
            reference=f"lot:{lot.id}",
            description="Promo credit expired",
        )
        lot.remaining_paisa = 0
        session.add(
            LotAllocation(
                transaction_id=expiry.id,
                lot_id=lot.id,
                account_id=account.id,
                kind="debit",
                amount_paisa=amount,
            )
        )
    for hold in repo.stale_active_holds(session, account.id, now):
        hold.status = "expired"
        hold.released_at = now
        account.reserved_paisa -= hold.amount_paisa


# --- accounts, top-ups, balances -------------------------------------------------------------


def create_account(
    session: Session,
    policy: LedgerPolicy,
    *,
    name: str,
    email: str,
    margin_rate: object | None = None,
    alert_threshold_paisa: int | None = None,
    idempotency_key: str | None = None,
    account_id: str | None = None,
) -> Account:
    name = name.strip()
    email = email.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name must be 1 to 200 characters")
    if "@" not in email or len(email) > 320 or " " in email:
        raise ValidationFailed("email is not a valid address")
    try:
        rate = validate_margin_rate(margin_rate) if margin_rate is not None else None
    except RatingError as exc:
        raise ValidationFailed(exc.message) from exc
    if alert_threshold_paisa is not None and not (0 <= alert_threshold_paisa <= MAX_AMOUNT_PAISA):
        raise ValidationFailed("alert_threshold_paisa is out of range")
    if idempotency_key:
        existing = repo.get_account_by_idempotency_key(session, idempotency_key)
        if existing is not None:
            return existing
    account = Account(
        id=account_id or new_id("acc"),
        name=name,
        email=email,
        margin_rate=rate,
        min_balance_paisa=policy.min_balance_paisa,
        alert_threshold_paisa=alert_threshold_paisa,
        paid_paisa=0,
        promo_paisa=0,
        reserved_paisa=0,
        version=0,
        idempotency_key=idempotency_key,
    )
    session.add(account)
    session.flush()
    if policy.welcome_promo_paisa > 0:
        _credit_promo(
            session,
            account,
            policy.welcome_promo_paisa,
            kind="promo_grant",
            key=f"welcome:{account.id}",
            payload_hash=request_hash({"welcome": policy.welcome_promo_paisa}),
            reference=None,
            description="Welcome bonus",
            expires_at=None,
        )
    return account


def top_up(
    session: Session, *, account_id: str, amount_paisa: int, payment_reference: str
) -> tuple[LedgerTransaction, BalanceSnapshot]:
    _check_amount(amount_paisa)
    if not payment_reference or len(payment_reference) > 200:
        raise ValidationFailed("payment_reference is required")
    key = f"topup:{payment_reference}"
    payload_hash = request_hash({"account_id": account_id, "amount_paisa": amount_paisa})
    account = _require_account(session, account_id)
    existing = _replay(session, key, payload_hash)
    if existing is not None:
        return existing, snapshot(account)
    transaction = _credit_paid(
        session,
        account,
        amount_paisa,
        kind="topup",
        key=key,
        payload_hash=payload_hash,
        contra_book="cash",
        reference=payment_reference,
        description="Top-up",
    )
    return transaction, snapshot(account)


def grant_promo(
    session: Session,
    *,
    account_id: str,
    amount_paisa: int,
    grant_key: str,
    expires_at: datetime | None = None,
    description: str = "Promo credit",
) -> tuple[LedgerTransaction, BalanceSnapshot]:
    _check_amount(amount_paisa)
    key = f"promo:{grant_key}"
    payload: dict[str, Any] = {"account_id": account_id, "amount_paisa": amount_paisa}
    if expires_at is not None:  # (kept out when None: hashes of earlier grants stay valid)
        payload["expires_at"] = expires_at.astimezone(UTC).isoformat()
    payload_hash = request_hash(payload)
    account = _require_account(session, account_id)
    existing = _replay(session, key, payload_hash)
    if existing is not None:
        return existing, snapshot(account)
    transaction = _credit_promo(
        session,
        account,
        amount_paisa,
        kind="promo_grant",
        key=key,
        payload_hash=payload_hash,
        reference=grant_key,
        description=description,
        expires_at=expires_at,
    )
    return transaction, snapshot(account)


@dataclass(frozen=True)
class BalanceSummary:
    balance: BalanceSnapshot
    month_usage_paisa: int


def month_start(now: datetime) -> datetime:
    local = now.astimezone(BILLING_TZ)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def _fresh_account(session: Session, account_id: str, now: datetime) -> Account:
    """The account for a read; when a promo lot has expired or a hold went stale, settle that
    first (locking the account row before anything else, like every write)."""
    account = repo.get_account(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    if repo.needs_housekeeping(session, account_id, now):
        account = _require_account(session, account_id)
        _housekeeping(session, account, now)
    return account


def balance_summary(
    session: Session, account_id: str, now: datetime | None = None
) -> BalanceSummary:
    now = now or utcnow()
    account = _fresh_account(session, account_id, now)
    return BalanceSummary(
        balance=snapshot(account),
        month_usage_paisa=repo.charges_since(
            session, account_id, month_start(now), next_month_start(now)
        ),
    )


def daily_spend_this_month(
    session: Session, account_id: str, now: datetime | None = None
) -> list[tuple[str, int]]:
    now = now or utcnow()
    return repo.daily_charges_since(
        session, account_id, month_start(now), "Asia/Kolkata", next_month_start(now)
    )


def list_transactions(
    session: Session, account_id: str, *, before_id: int | None, limit: int
) -> list[LedgerTransaction]:
    if repo.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    return list(repo.list_transactions(session, account_id, before_id, limit))


def set_alert_threshold(session: Session, account_id: str, threshold_paisa: int | None) -> Account:
    if threshold_paisa is not None and not (0 <= threshold_paisa <= MAX_AMOUNT_PAISA):
        raise ValidationFailed("alert_threshold_paisa is out of range")
    account = _require_account(session, account_id)
    account.alert_threshold_paisa = threshold_paisa
    return account


# --- rate cards ------------------------------------------------------------------------------

# Keyed by database too: one process (a test run) may talk to several databases whose
# version numbers collide.
_rate_card_cache: dict[tuple[str, int], RateCard] = {}


def load_rate_card(session: Session, version: int) -> RateCard:
    """Versions are immutable once published, so they are cached forever in-process."""
    cache_key = (str(session.get_bind().engine.url), version)
    cached = _rate_card_cache.get(cache_key)
    if cached is not None:
        return cached
    header = session.get(RateCardVersion, version)
    if header is None:
        raise NotFound(f"rate card v{version} not found")
    card = RateCard(
        version=version,
        prices=[
            UnitPrice(p.sku, p.component, p.unit, str(p.price_inr.normalize()))
            for p in repo.rate_card_prices(session, version)
        ],
        effective_from=header.effective_from.isoformat(),
    )
    _rate_card_cache[cache_key] = card
    return card


def current_rate_card(session: Session, at: datetime | None = None) -> RateCard:
    header = repo.rate_card_in_force(session, at or utcnow())
    if header is None:
        raise NotFound("no rate card is in force")
    return load_rate_card(session, header.version)


def publish_rate_card(
    session: Session,
    *,
    prices: Iterable[Mapping[str, object]],
    effective_from: datetime | None = None,
    idempotency_key: str | None = None,
) -> RateCard:
    try:
        validated = validate_rate_card_prices(prices)
    except RatingError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc
    payload_hash = request_hash(
        {
            "key": idempotency_key,
            "prices": [p.__dict__ for p in validated],
            "effective_from": effective_from,
        }
    )
    if idempotency_key:
        existing = repo.rate_card_by_hash(session, payload_hash)
        if existing is not None:
            return load_rate_card(session, existing.version)
    header = RateCardVersion(
        effective_from=effective_from or utcnow(),
        request_hash=payload_hash if idempotency_key else None,
    )
    session.add(header)
    session.flush()
    session.add_all(
        RateCardPrice(
            version=header.version,
            sku=p.sku,
            unit=p.unit,
            component=p.component,
            price_inr=Decimal(p.price_inr),
        )
        for p in validated
    )
    session.flush()
    return load_rate_card(session, header.version)


# --- calls -----------------------------------------------------------------------------------


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
    account = repo.lock_account(session, account_id)
    if account is None:
        return AuthorizeDecision(False, REASON_ACCOUNT_NOT_FOUND, 0, 0, None)
    existing = repo.get_call(session, call_id)
    if existing is not None:
        if existing.account_id != account_id or existing.channel != channel:
            raise Conflict(f"call {call_id} was authorized for another account or channel")
        return _decision_from_call(session, existing, account)
    _housekeeping(session, account, now)
    card = current_rate_card(session, now)
    # As stored (NUMERIC(8,4)), so a replayed decision is identical to the first one.
    margin_rate = _margin_rate(account).quantize(Decimal("0.0001"))
    available = account.paid_paisa + account.promo_paisa
    authorized = available - account.reserved_paisa >= account.min_balance_paisa
    hold = (policy.call_hold_paisa or account.min_balance_paisa) if authorized else 0
    call = Call(
        call_id=call_id,
        account_id=account_id,
        channel=channel,
        status="active" if authorized else "finalized",
        authorized=authorized,
        refusal_reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
        outcome=None if authorized else Outcome.REFUSED.value,
        rate_card_version=card.version,
        margin_rate=margin_rate,
        hold_paisa=hold,
        available_at_authorization_paisa=available,
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
        session.add(
            Hold(
                account_id=account_id,
                reference=f"call:{call_id}",
                amount_paisa=hold,
                status="active",
                expires_at=started + policy.max_call_duration + policy.hold_grace,
            )
        )
        account.reserved_paisa += hold
    session.flush()
    return _decision_from_call(session, call, account)


def _store_breakdown(call: Call, breakdown: Breakdown) -> None:
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


def _finalized_view(call: Call, account: Account | None) -> FinalizedCall:
    return FinalizedCall(
        call_id=call.call_id,
        account_id=call.account_id,
        outcome=call.outcome or "",
        charged=call.transaction_id is not None,
        breakdown=call_breakdown(call),
        transaction_id=call.transaction_id,
        balance=snapshot(account) if account is not None else None,
    )


def finalize_call(
    session: Session, request: FinalizeCallRequest, now: datetime | None = None
) -> FinalizedCall:
    """Capture (charged outcomes) or void (the rest), release the hold, exactly once."""
    now = now or utcnow()
    peek = repo.get_call(session, request.call_id)
    if peek is None:
        raise NotFound(f"call {request.call_id} not found")
    account = _require_account(session, peek.account_id)
    call = repo.get_call(session, request.call_id, lock=True)
    assert call is not None
    if call.status == "finalized":
        return _finalized_view(call, account)  # the first finalization wins
    if request.outcome not in {o.value for o in Outcome} or request.outcome == Outcome.REFUSED:
        raise ValidationFailed(f"outcome {request.outcome!r} is not a final call outcome")
    # Expired promo must not pay for the charge; a stale hold (this call's too) is released.
    _housekeeping(session, account, now)
    assert call.rate_card_version is not None
    card = load_rate_card(session, call.rate_card_version)
    charged = is_charged(request.outcome)
    priced = price_usage(request.usage, card, call.margin_rate)
    breakdown = priced if charged else Breakdown.zero(call.margin_rate)
    call.status = "finalized"
    call.outcome = request.outcome
    call.hangup_reason = request.hangup_reason
    call.ended_at = _parse_time(request.ended_at, "ended_at") or now
    call.finalized_at = now
    call.updated_at = now
    call.usage = [line.__dict__ for line in request.usage]
    call.usage_event_count = request.usage_event_count
    call.rejected_event_count = request.rejected_event_count
    _store_breakdown(call, breakdown)
    if charged and breakdown.total_paisa > 0:
        transaction = _debit(
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
    hold = repo.hold_by_reference(session, f"call:{call.call_id}")
    if hold is not None and hold.status == "active":
        hold.status = "captured" if charged else "voided"
        hold.released_at = now
        account.reserved_paisa -= hold.amount_paisa
    session.flush()
    return _finalized_view(call, account)


def get_call(session: Session, call_id: str) -> Call:
    call = repo.get_call(session, call_id)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


def list_calls(
    session: Session, account_id: str, *, before: tuple[datetime, str] | None, limit: int
) -> list[Call]:
    if repo.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    return list(repo.list_calls(session, account_id, before, limit))


def release_stale_holds(session: Session, now: datetime | None = None, limit: int = 100) -> int:
    """Sweep: expire holds of calls that never finalized (max duration + grace passed)."""
    now = now or utcnow()
    released = 0
    for account_id in repo.accounts_with_stale_holds(session, now, limit):
        account = _require_account(session, account_id)
        before = account.reserved_paisa
        _housekeeping(session, account, now)
        released += before - account.reserved_paisa
    return released


# --- osmAPI requests -------------------------------------------------------------------------


def authorize_api_request(
    session: Session, *, account_id: str, now: datetime | None = None
) -> AuthorizeDecision:
    now = now or utcnow()
    account = _fresh_account(session, account_id, now)
    available = account.paid_paisa + account.promo_paisa
    authorized = available - account.reserved_paisa >= account.min_balance_paisa
    card = current_rate_card(session, now)
    return AuthorizeDecision(
        authorized=authorized,
        reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
        hold_paisa=0,
        available_paisa=available,
        rate_card_version=card.version,
        margin_rate=str(_margin_rate(account)),
        balance=snapshot(account),
    )


def charge_api_usage(
    session: Session,
    *,
    request_id: str,
    account_id: str,
    sku: str,
    input_tokens: int,
    output_tokens: int,
    now: datetime | None = None,
) -> tuple[ApiRequest, BalanceSnapshot]:
    """Charge a finished LLM request; never refused (the work is done). Idempotent on
    request_id; the same id with a different body is a conflict."""
    now = now or utcnow()
    if not request_id or len(request_id) > 200:
        raise ValidationFailed("request_id must be 1 to 200 characters")
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
            raise ValidationFailed(f"{name} must be an integer between 0 and 1000000000")
    payload_hash = request_hash(
        {"account_id": account_id, "sku": sku, "in": input_tokens, "out": output_tokens}
    )
    account = _require_account(session, account_id)
    existing = repo.api_request(session, request_id)
    if existing is not None:
        if existing.request_hash != payload_hash:
            raise Conflict(f"request {request_id} was charged with a different body")
        return existing, snapshot(account)
    _housekeeping(session, account, now)
    card = current_rate_card(session, now)
    from domain.rating import validate_usage_event

    try:
        event = validate_usage_event(
            {
                "event_id": request_id,
                "component": Component.LLM.value,
                "sku": sku,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
            },
            Channel.CHAT.value,
            card,
        )
    except RatingError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc
    totals = UsageTotals()
    totals.add(event)
    breakdown = price_usage(totals.lines, card, _margin_rate(account))
    record = ApiRequest(
        request_id=request_id,
        account_id=account_id,
        sku=sku,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        rate_card_version=card.version,
        provider_total_paisa=breakdown.provider_total_paisa,
        margin_paisa=breakdown.margin_paisa,
        total_paisa=breakdown.total_paisa,
        request_hash=payload_hash,
    )
    if breakdown.total_paisa > 0:
        transaction = _debit(
            session,
            account,
            breakdown.total_paisa,
            kind="api_charge",
            key=f"api:{request_id}",
            payload_hash=payload_hash,
            contra=[
                ("provider_payable", breakdown.provider_total_paisa),
                ("margin_revenue", breakdown.margin_paisa),
            ],
            reference=request_id,
            description=f"osmAPI request ({sku})",
            details={"breakdown": breakdown.__dict__, "sku": sku},
        )
        record.transaction_id = transaction.id
    session.add(record)
    session.flush()
    return record, snapshot(account)


# --- coupons ---------------------------------------------------------------------------------


def create_coupon(
    session: Session,
    *,
    code: str,
    bonus_paisa: int,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
    promo_expires_at: datetime | None = None,
) -> Coupon:
    if not code or len(code) > 64 or any(ch.isspace() for ch in code):
        raise ValidationFailed("code must be 1 to 64 characters without spaces")
    _check_amount(bonus_paisa, "bonus_paisa")
    if max_redemptions is not None and not 1 <= max_redemptions <= 10_000_000:
        raise ValidationFailed("max_redemptions must be at least 1")
    existing = repo.lock_coupon(session, code)
    if existing is not None:
        same = (
            existing.bonus_paisa == bonus_paisa
            and existing.max_redemptions == max_redemptions
            and existing.expires_at == expires_at
            and existing.promo_expires_at == promo_expires_at
        )
        if not same:
            raise Conflict(f"coupon {code} already exists with other terms")
        return existing
    coupon = Coupon(
        code=code,
        bonus_paisa=bonus_paisa,
        max_redemptions=max_redemptions,
        redemption_count=0,
        expires_at=expires_at,
        promo_expires_at=promo_expires_at,
    )
    session.add(coupon)
    session.flush()
    return coupon


def _usable_coupon(
    session: Session, account_id: str, code: str, now: datetime, *, lock: bool
) -> Coupon:
    coupon = repo.lock_coupon(session, code) if lock else session.get(Coupon, code)
    if coupon is None:
        raise InvalidCoupon("this coupon code does not exist (codes are case-sensitive)")
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise InvalidCoupon("this coupon has expired")
    if repo.redemption(session, code, account_id) is not None:
        raise InvalidCoupon("this coupon was already redeemed on this account")
    if coupon.max_redemptions is not None and coupon.redemption_count >= coupon.max_redemptions:
        raise InvalidCoupon("this coupon has been fully redeemed")
    return coupon


def preview_coupon(
    session: Session, *, account_id: str, code: str, now: datetime | None = None
) -> Coupon:
    if repo.get_account(session, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    return _usable_coupon(session, account_id, code, now or utcnow(), lock=False)


def redeem_coupon(
    session: Session, *, account_id: str, code: str, now: datetime | None = None
) -> tuple[LedgerTransaction, BalanceSnapshot]:
    now = now or utcnow()
    account = _require_account(session, account_id)
    coupon = _usable_coupon(session, account_id, code, now, lock=True)
    transaction = _credit_promo(
        session,
        account,
        coupon.bonus_paisa,
        kind="coupon",
        key=f"coupon:{code}:{account_id}",
        payload_hash=request_hash({"code": code}),
        reference=code,
        description=f"Coupon {code}",
        expires_at=coupon.promo_expires_at,
    )
    session.add(CouponRedemption(code=code, account_id=account_id, transaction_id=transaction.id))
    repo.bump_coupon_count(session, code)
    session.flush()
    return transaction, snapshot(account)


# --- refunds ---------------------------------------------------------------------------------


def refundable_paisa(account: Account) -> int:
    """Paid credit not needed by calls in progress; promo is never refunded."""
    return max(0, account.paid_paisa - account.reserved_paisa)


def start_refund(
    session: Session, *, refund_id: str, account_id: str, amount_paisa: int | None
) -> tuple[Refund, BalanceSnapshot]:
    """Debit the paid balance as a pending refund (idempotent on refund_id)."""
    account = _require_account(session, account_id)
    existing = repo.get_refund(session, refund_id)
    if existing is not None:
        if existing.account_id != account_id or (
            amount_paisa is not None and existing.amount_paisa != amount_paisa
        ):
            raise Conflict(f"refund {refund_id} exists with other terms")
        return existing, snapshot(account)
    _housekeeping(session, account, utcnow())
    refundable = refundable_paisa(account)
    amount = refundable if amount_paisa is None else amount_paisa
    if amount_paisa is not None:
        _check_amount(amount_paisa)
    if amount <= 0:
        raise RefundNotAllowed("there is no refundable paid balance")
    if amount > refundable:
        raise RefundNotAllowed(
            f"refund of {amount} paisa exceeds the refundable paid balance of {refundable}"
        )
    transaction = _debit(
        session,
        account,
        amount,
        kind="refund",
        key=f"refund:{refund_id}",
        payload_hash=request_hash({"refund_id": refund_id, "amount": amount}),
        contra=[("refunds_payable", amount)],
        reference=refund_id,
        description="Refund to original payment method",
        promo_allowed=False,
    )
    refund = Refund(
        id=refund_id,
        account_id=account_id,
        amount_paisa=amount,
        status="pending",
        debit_transaction_id=transaction.id,
    )
    session.add(refund)
    session.flush()
    return refund, snapshot(account)


def complete_refund(
    session: Session, *, refund_id: str, gateway_reference: str | None
) -> tuple[Refund, BalanceSnapshot]:
    refund = repo.get_refund(session, refund_id)
    if refund is None:
        raise NotFound(f"refund {refund_id} not found")
    account = _require_account(session, refund.account_id)
    refund = repo.get_refund(session, refund_id, lock=True)
    assert refund is not None
    if refund.status == "failed":
        raise Conflict(f"refund {refund_id} already failed")
    if refund.status == "pending":
        refund.status = "completed"
        refund.gateway_reference = gateway_reference
        refund.updated_at = utcnow()
    return refund, snapshot(account)


def fail_refund(session: Session, *, refund_id: str, reason: str) -> tuple[Refund, BalanceSnapshot]:
    """A refund the gateway refused for good: put the money back as paid credit."""
    refund = repo.get_refund(session, refund_id)
    if refund is None:
        raise NotFound(f"refund {refund_id} not found")
    account = _require_account(session, refund.account_id)
    refund = repo.get_refund(session, refund_id, lock=True)
    assert refund is not None
    if refund.status == "completed":
        raise Conflict(f"refund {refund_id} already completed")
    if refund.status == "pending":
        transaction = _credit_paid(
            session,
            account,
            refund.amount_paisa,
            kind="refund_reversal",
            key=f"refund:{refund_id}:reversal",
            payload_hash=request_hash({"refund_id": refund_id}),
            contra_book="refunds_payable",
            reference=refund_id,
            description="Refund failed: amount returned",
        )
        refund.status = "failed"
        refund.failure_reason = reason[:1000]
        refund.reversal_transaction_id = transaction.id
        refund.updated_at = utcnow()
    return refund, snapshot(account)


def get_refund(session: Session, refund_id: str) -> Refund:
    refund = repo.get_refund(session, refund_id)
    if refund is None:
        raise NotFound(f"refund {refund_id} not found")
    return refund


# --- API keys --------------------------------------------------------------------------------

ROLES = ("customer", "orchestrator", "support", "admin")


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, *, role: str, account_id: str | None = None
) -> tuple[ApiKey, str]:
    """Returns the stored key and its secret; only the hash is kept."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
    if role == "customer":
        if not account_id:
            raise ValidationFailed("a customer key needs an account_id")
        if repo.get_account(session, account_id) is None:
            raise NotFound(f"account {account_id} not found")
    elif account_id is not None:
        raise ValidationFailed("only customer keys are bound to an account")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        key_hash=hash_api_key(secret),
        prefix=secret[:10],
        role=role,
        account_id=account_id,
    )
    session.add(key)
    session.flush()
    return key, secret


def resolve_api_key(session: Session, secret: str) -> ApiKey | None:
    key = repo.api_key_by_hash(session, hash_api_key(secret))
    if key is None or key.revoked_at is not None:
        return None
    return key


def revoke_api_key(session: Session, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"api key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


__all__ = [
    "BalanceSummary",
    "LedgerPolicy",
    "UsageEvent",
    "UsageLine",
]


def policy_from_settings() -> LedgerPolicy:
    from core.config import get_settings

    settings = get_settings()
    return LedgerPolicy(
        min_balance_paisa=settings.min_balance_paisa,
        welcome_promo_paisa=settings.welcome_promo_paisa,
        call_hold_paisa=settings.call_hold_paisa,
        max_call_duration=timedelta(seconds=settings.max_call_duration_seconds),
        hold_grace=timedelta(seconds=settings.hold_grace_seconds),
    )
