"""All SQL the ledger runs. Functions take a Session; the caller owns the transaction.

Every locking read (`FOR UPDATE`) also sets `populate_existing`: a row already in the session's
identity map (read before the lock, e.g. a call peeked at to find its account) would otherwise
keep its stale attributes, and a concurrent finalization or refund could act on a state that
another transaction has already changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
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
    LedgerTransaction,
    LotAllocation,
    RateCardPrice,
    RateCardVersion,
    Refund,
)

CHARGE_KINDS = ("call_charge", "api_charge")


def lock_account(session: Session, account_id: str) -> Account | None:
    return session.scalars(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def get_account(session: Session, account_id: str) -> Account | None:
    return session.get(Account, account_id)


def get_account_by_idempotency_key(session: Session, key: str) -> Account | None:
    return session.scalars(select(Account).where(Account.idempotency_key == key)).one_or_none()


def transaction_by_key(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).one_or_none()


def open_lots(session: Session, account_id: str, kind: str) -> Sequence[CreditLot]:
    """Lots with credit left, oldest first, locked (the account row is already locked)."""
    return session.scalars(
        select(CreditLot)
        .where(
            CreditLot.account_id == account_id,
            CreditLot.kind == kind,
            CreditLot.remaining_paisa > 0,
        )
        .order_by(CreditLot.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def expired_promo_lots(session: Session, account_id: str, now: datetime) -> Sequence[CreditLot]:
    return session.scalars(
        select(CreditLot)
        .where(
            CreditLot.account_id == account_id,
            CreditLot.kind == "promo",
            CreditLot.remaining_paisa > 0,
            CreditLot.expires_at.is_not(None),
            CreditLot.expires_at <= now,
        )
        .order_by(CreditLot.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def needs_housekeeping(session: Session, account_id: str, now: datetime) -> bool:
    """Is there an expired promo lot or a stale hold to settle? (a plain read, no locks)"""
    expired_lot = (
        select(CreditLot.id)
        .where(
            CreditLot.account_id == account_id,
            CreditLot.kind == "promo",
            CreditLot.remaining_paisa > 0,
            CreditLot.expires_at.is_not(None),
            CreditLot.expires_at <= now,
        )
        .exists()
    )
    stale_hold = (
        select(Hold.id)
        .where(Hold.account_id == account_id, Hold.status == "active", Hold.expires_at <= now)
        .exists()
    )
    return bool(session.scalar(select(expired_lot | stale_hold)))


def stale_active_holds(session: Session, account_id: str, now: datetime) -> Sequence[Hold]:
    return session.scalars(
        select(Hold)
        .where(Hold.account_id == account_id, Hold.status == "active", Hold.expires_at <= now)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def accounts_with_stale_holds(session: Session, now: datetime, limit: int) -> Sequence[str]:
    return session.scalars(
        select(Hold.account_id)
        .where(Hold.status == "active", Hold.expires_at <= now)
        .distinct()
        .order_by(Hold.account_id)  # one lock order for concurrent sweepers
        .limit(limit)
    ).all()


def hold_by_reference(session: Session, reference: str) -> Hold | None:
    return session.scalars(
        select(Hold)
        .where(Hold.reference == reference)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def get_call(session: Session, call_id: str, *, lock: bool = False) -> Call | None:
    statement = select(Call).where(Call.call_id == call_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def list_calls(
    session: Session, account_id: str, before: tuple[datetime, str] | None, limit: int
) -> Sequence[Call]:
    statement = select(Call).where(Call.account_id == account_id)
    if before is not None:
        statement = statement.where(
            (Call.created_at < before[0])
            | ((Call.created_at == before[0]) & (Call.call_id < before[1]))
        )
    return session.scalars(
        statement.order_by(Call.created_at.desc(), Call.call_id.desc()).limit(limit)
    ).all()


def list_transactions(
    session: Session, account_id: str, before_id: int | None, limit: int
) -> Sequence[LedgerTransaction]:
    statement = select(LedgerTransaction).where(LedgerTransaction.account_id == account_id)
    if before_id is not None:
        statement = statement.where(LedgerTransaction.id < before_id)
    return session.scalars(statement.order_by(LedgerTransaction.id.desc()).limit(limit)).all()


def charges_since(
    session: Session, account_id: str, since: datetime, until: datetime | None = None
) -> int:
    statement = select(func.coalesce(func.sum(LedgerTransaction.amount_paisa), 0)).where(
        LedgerTransaction.account_id == account_id,
        LedgerTransaction.kind.in_(CHARGE_KINDS),
        LedgerTransaction.created_at >= since,
    )
    if until is not None:
        statement = statement.where(LedgerTransaction.created_at < until)
    total = session.scalar(statement)
    return -int(total or 0)


def daily_charges_since(
    session: Session, account_id: str, since: datetime, tz: str, until: datetime | None = None
) -> list[tuple[str, int]]:
    day = func.to_char(func.timezone(tz, LedgerTransaction.created_at), "YYYY-MM-DD")
    conditions = [
        LedgerTransaction.account_id == account_id,
        LedgerTransaction.kind.in_(CHARGE_KINDS),
        LedgerTransaction.created_at >= since,
    ]
    if until is not None:
        conditions.append(LedgerTransaction.created_at < until)
    rows = session.execute(
        select(day, func.sum(LedgerTransaction.amount_paisa))
        .where(*conditions)
        .group_by(day)
        .order_by(day)
    ).all()
    return [(str(d), -int(total)) for d, total in rows]


def rate_card_in_force(session: Session, at: datetime) -> RateCardVersion | None:
    return session.scalars(
        select(RateCardVersion)
        .where(RateCardVersion.effective_from <= at)
        .order_by(RateCardVersion.effective_from.desc(), RateCardVersion.version.desc())
        .limit(1)
    ).one_or_none()


def rate_card_prices(session: Session, version: int) -> Sequence[RateCardPrice]:
    return session.scalars(
        select(RateCardPrice)
        .where(RateCardPrice.version == version)
        .order_by(RateCardPrice.sku, RateCardPrice.unit)
    ).all()


def rate_card_by_hash(session: Session, request_hash: str) -> RateCardVersion | None:
    return session.scalars(
        select(RateCardVersion).where(RateCardVersion.request_hash == request_hash).limit(1)
    ).one_or_none()


def lock_coupon(session: Session, code: str) -> Coupon | None:
    return session.scalars(
        select(Coupon)
        .where(Coupon.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def redemption(session: Session, code: str, account_id: str) -> CouponRedemption | None:
    return session.scalars(
        select(CouponRedemption).where(
            CouponRedemption.code == code, CouponRedemption.account_id == account_id
        )
    ).one_or_none()


def api_request(session: Session, request_id: str) -> ApiRequest | None:
    return session.get(ApiRequest, request_id)


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def get_refund(session: Session, refund_id: str, *, lock: bool = False) -> Refund | None:
    statement = select(Refund).where(Refund.id == refund_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def allocations_for(session: Session, transaction_id: int) -> Sequence[LotAllocation]:
    return session.scalars(
        select(LotAllocation).where(LotAllocation.transaction_id == transaction_id)
    ).all()


def bump_coupon_count(session: Session, code: str) -> None:
    session.execute(
        update(Coupon)
        .where(Coupon.code == code)
        .values(redemption_count=Coupon.redemption_count + 1)
    )
