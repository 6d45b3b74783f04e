"""The ledger schema. Uniqueness that guards money is in constraints, never only in code."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Account(Base):
    """A customer. The balance columns are a cache of the journal, updated in the same txn."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("promo_paisa >= 0", name="promo_never_negative"),
        CheckConstraint("reserved_paisa >= 0", name="reserved_never_negative"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    margin_rate: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    min_balance_paisa: Mapped[int] = mapped_column(BigInteger)
    alert_threshold_paisa: Mapped[int | None] = mapped_column(BigInteger)
    paid_paisa: Mapped[int] = mapped_column(BigInteger, default=0)
    promo_paisa: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_paisa: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(Text, unique=True)
    # Low-balance alert: armed while available >= threshold; a balance change that takes it
    # below while armed is a crossing (an `alert_outbox` row in the same transaction).
    low_balance_armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Auto-recharge (contract §6; db.payment_models holds the saved methods): armed while
    # available − reserved >= its threshold, like the alert.
    auto_recharge_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_recharge_threshold_paisa: Mapped[int | None] = mapped_column(BigInteger)
    auto_recharge_amount_paisa: Mapped[int | None] = mapped_column(BigInteger)
    auto_recharge_failures: Mapped[int] = mapped_column(Integer, default=0)
    auto_recharge_method_id: Mapped[str | None] = mapped_column(String(64))
    auto_recharge_armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The customer's RazorpayX fund account (bank account) for refund payout parts; support sets it.
    payout_fund_account_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now_column()


class AlertOutbox(Base):
    """Low-balance crossings, written in the transaction of the balance change that crossed;
    `delivered_at` is set once the alert email is sent or owned by the email log."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index("ix_alert_outbox_undelivered", "account_id", postgresql_where="delivered_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerTransaction(Base):
    """One balance change as the customer sees it; its journal entries sum to zero."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        Index("ix_ledger_tx_account_id_desc", "account_id", "id"),
        Index("ix_ledger_tx_account_created", "account_id", "created_at"),  # history filters
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    amount_paisa: Mapped[int] = mapped_column(BigInteger)  # signed: credits +, debits -
    paid_delta_paisa: Mapped[int] = mapped_column(BigInteger)
    promo_delta_paisa: Mapped[int] = mapped_column(BigInteger)
    paid_balance_after: Mapped[int] = mapped_column(BigInteger)
    promo_balance_after: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = _now_column()


class AccountMonthUsage(Base):
    """Σ an account's charges in one calendar month (Asia/Kolkata): kept by triggers on
    ledger_transactions (migration 0008), read by every balance answer."""

    __tablename__ = "account_month_usage"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day
    charged_paisa: Mapped[int] = mapped_column(BigInteger)


class JournalEntry(Base):
    """Double entry. Customer books: customer_paid, customer_promo (per account_id). System
    books (account_id kept for attribution, never a shared hot row): cash, promo_expense,
    provider_payable, margin_revenue, refunds_payable."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_account_book", "account_id", "book"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    book: Mapped[str] = mapped_column(String(32))
    amount_paisa: Mapped[int] = mapped_column(BigInteger)


class CreditLot(Base):
    """A paid top-up or a promo grant, with what is left of it."""

    __tablename__ = "credit_lots"
    __table_args__ = (
        CheckConstraint("remaining_paisa >= 0", name="lot_remaining_never_negative"),
        CheckConstraint("remaining_paisa <= original_paisa", name="lot_remaining_le_original"),
        CheckConstraint("kind IN ('paid', 'promo')", name="lot_kind"),
        Index("ix_lots_account_kind", "account_id", "kind", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(8))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    original_paisa: Mapped[int] = mapped_column(BigInteger)
    remaining_paisa: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()


class LotAllocation(Base):
    """Which lot paid for which debit. lot_id NULL: the part of a debit no lot covered
    (an in-progress call taking paid below zero); kind 'settlement' is a later top-up
    paying that overdraft back."""

    __tablename__ = "lot_allocations"
    __table_args__ = (
        CheckConstraint("amount_paisa > 0", name="allocation_positive"),
        CheckConstraint("kind IN ('debit', 'overdraft', 'settlement')", name="allocation_kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lots.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_paisa: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("amount_paisa >= 0", name="hold_non_negative"),
        Index("ix_holds_active", "account_id", postgresql_where="status = 'active'"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    reference: Mapped[str] = mapped_column(Text, unique=True)
    amount_paisa: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # active, captured, voided, expired
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_account_started", "account_id", "created_at", "call_id"),
        # The orphan sweep's scan: calls still in progress, longest idle first.
        Index("ix_calls_active_idle", "updated_at", postgresql_where="status = 'active'"),
    )

    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active, finalized
    authorized: Mapped[bool] = mapped_column(Boolean)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    hangup_reason: Mapped[str | None] = mapped_column(Text)
    rate_card_version: Mapped[int | None] = mapped_column(Integer)
    margin_rate: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    hold_paisa: Mapped[int] = mapped_column(BigInteger, default=0)
    available_at_authorization_paisa: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    usage: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    usage_event_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_event_count: Mapped[int] = mapped_column(Integer, default=0)
    llm_paisa: Mapped[int | None] = mapped_column(BigInteger)
    stt_paisa: Mapped[int | None] = mapped_column(BigInteger)
    tts_paisa: Mapped[int | None] = mapped_column(BigInteger)
    sip_paisa: Mapped[int | None] = mapped_column(BigInteger)
    provider_total_paisa: Mapped[int | None] = mapped_column(BigInteger)
    margin_paisa: Mapped[int | None] = mapped_column(BigInteger)
    total_paisa: Mapped[int | None] = mapped_column(BigInteger)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()


class CallUsageEvent(Base):
    """One usage event of a call, as the ledger accepted it. The primary key (call_id,
    event_id) is the call's dedupe for its whole life: a repeated event id is counted once,
    however many workflow runs the call spans. `calls.usage` holds the running totals."""

    __tablename__ = "call_usage_events"
    __table_args__ = (CheckConstraint("phase IN ('live', 'late')", name="usage_event_phase"),)

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    component: Mapped[str] = mapped_column(String(8))
    sku: Mapped[str] = mapped_column(Text)
    quantities: Mapped[dict[str, str]] = mapped_column(JSONB)  # unit -> exact decimal string
    occurred_at: Mapped[str | None] = mapped_column(Text)  # as reported
    # Which checkpoint recorded it (`<run_id>:<n>`, `final`, ...): a retried attempt whose first
    # try committed finds its own rows, which are not duplicates.
    batch: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(String(8))  # live; late = after the call was finalized
    recorded_at: Mapped[datetime] = _now_column()


class ApiRequest(Base):
    """An osmAPI LLM request charged to the shared balance."""

    __tablename__ = "api_requests"

    request_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    sku: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    rate_card_version: Mapped[int] = mapped_column(Integer)
    provider_total_paisa: Mapped[int] = mapped_column(BigInteger)
    margin_paisa: Mapped[int] = mapped_column(BigInteger)
    total_paisa: Mapped[int] = mapped_column(BigInteger)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now_column()


class RateCardVersion(Base):
    __tablename__ = "rate_cards"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()
    request_hash: Mapped[str | None] = mapped_column(String(64))


class RateCardPrice(Base):
    __tablename__ = "rate_card_prices"

    version: Mapped[int] = mapped_column(ForeignKey("rate_cards.version"), primary_key=True)
    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    component: Mapped[str] = mapped_column(String(8))
    price_inr: Mapped[Decimal] = mapped_column(Numeric(24, 12))


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("bonus_paisa > 0", name="coupon_bonus_positive"),
        CheckConstraint(
            "max_redemptions IS NULL OR redemption_count <= max_redemptions",
            name="coupon_max_redemptions",
        ),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)  # case-sensitive
    bonus_paisa: Mapped[int] = mapped_column(BigInteger)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    redemption_count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    promo_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()


class CouponRedemption(Base):
    __tablename__ = "coupon_redemptions"
    __table_args__ = (UniqueConstraint("code", "account_id", name="coupon_once_per_account"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(ForeignKey("coupons.code"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = _now_column()


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('customer', 'orchestrator', 'support', 'admin')", name="api_key_role"
        ),
        CheckConstraint(
            "(role = 'customer') = (account_id IS NOT NULL)", name="customer_key_has_account"
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = _now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_paisa: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending, completed, failed
    failure_reason: Mapped[str | None] = mapped_column(Text)
    gateway_reference: Mapped[str | None] = mapped_column(Text)
    debit_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()


class IdempotencyRecord(Base):
    """HTTP Idempotency-Key replay store: same key + same body replays, another body is 409."""

    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_created", "created_at"),)

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = _now_column()


class EmailLog(Base):
    """Every email we send, keyed by a stable dedupe key so a retry never sends twice."""

    __tablename__ = "email_log"
    __table_args__ = (
        Index("ix_email_log_sending", "claimed_at", postgresql_where="status = 'sending'"),
    )

    dedupe_key: Mapped[str] = mapped_column(Text, primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    to_email: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # sending, sent, failed
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    # The message as sent (to, subject, text, html, ...): what a reclaimed send sends again.
    message: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    claimed_at: Mapped[datetime] = _now_column()  # when the current attempt took the key
    created_at: Mapped[datetime] = _now_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
