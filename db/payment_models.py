"""Money in through the payment gateway (contract §6): checkouts (one gateway order each), the
gateway's payments we credited or saw fail, every webhook event as received, and saved payment
methods for auto-recharge (whose settings are columns of `accounts`).

Exactly-once crediting rests on constraints, not code: `gateway_payments.id` is the payment id,
and its top-up is the ledger transaction `topup:<payment id>` (unique idempotency key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, _now_column


class PaymentMethod(Base):
    """A token saved at the gateway (a card saved for auto-recharge)."""

    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    customer_id: Mapped[str] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(Text, unique=True)
    method: Mapped[str | None] = mapped_column(String(32))
    source_payment_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now_column()


class Checkout(Base):
    """One purchase of credit: a gateway order for `amount_paisa`, `created` → `paid`, `failed`
    or `expired`. Auto-recharge checkouts are keyed by their crossing (`request_key`)."""

    __tablename__ = "checkouts"
    __table_args__ = (
        CheckConstraint("amount_paisa > 0", name="checkout_amount_positive"),
        CheckConstraint(
            "status IN ('created', 'paid', 'failed', 'expired')", name="checkout_status"
        ),
        CheckConstraint("kind IN ('customer', 'auto_recharge')", name="checkout_kind"),
        Index("ix_checkouts_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="customer")
    request_key: Mapped[str | None] = mapped_column(Text, unique=True)
    amount_paisa: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    status: Mapped[str] = mapped_column(String(16), default="created")
    save_method: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_id: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    charge_attempted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GatewayPayment(Base):
    """A gateway payment of one of our checkouts: captured and credited (with its top-up), or
    failed. `refunded_paisa` is what refunds have sent back to it so far."""

    __tablename__ = "gateway_payments"
    __table_args__ = (
        CheckConstraint("amount_paisa > 0", name="gateway_payment_amount_positive"),
        CheckConstraint(
            "refunded_paisa >= 0 AND refunded_paisa <= amount_paisa",
            name="gateway_payment_refunded_within_amount",
        ),
        Index("ix_gateway_payments_account_captured", "account_id", "captured_at"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # the gateway's payment id
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), index=True)
    amount_paisa: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # captured | failed
    customer_id: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[str | None] = mapped_column(Text)
    error_reason: Mapped[str | None] = mapped_column(Text)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refunded_paisa: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()


class GatewayEvent(Base):
    """Every webhook event with a valid signature, stored before it is acknowledged. One row per
    event (`dedupe_key`: Razorpay's event id, else a hash of the body); `deliveries` counts how
    often it arrived. `disposition` says what became of it; unmatched ones are for support."""

    __tablename__ = "gateway_events"
    __table_args__ = (
        CheckConstraint("status IN ('received', 'processed')", name="gateway_event_status"),
        Index("ix_gateway_events_disposition", "disposition", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    event: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(Text, index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    refund_id: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(String(64))
    amount_paisa: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    signature_verified: Mapped[bool] = mapped_column(Boolean)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="received")
    disposition: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = _now_column()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefundPart(Base):
    """One part of a refund: a gateway refund against one captured payment (`payment_id`), or a
    payout to the customer's bank account. Written with the refund's debit (the plan never
    changes); `idempotency_key` is the part's key at the gateway. `pending` → `processed`, or
    `failed` with its amount credited back (`reversal_transaction_id`)."""

    __tablename__ = "refund_parts"
    __table_args__ = (
        CheckConstraint("amount_paisa >= 100", name="refund_part_at_least_one_rupee"),
        CheckConstraint("kind IN ('gateway', 'payout')", name="refund_part_kind"),
        CheckConstraint("status IN ('pending', 'processed', 'failed')", name="refund_part_status"),
        CheckConstraint(
            "(kind = 'gateway') = (payment_id IS NOT NULL)", name="refund_part_payment_iff_gateway"
        ),
        Index("ix_refund_parts_payment", "payment_id"),
    )

    refund_id: Mapped[str] = mapped_column(ForeignKey("refunds.id"), primary_key=True)
    part_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("gateway_payments.id"))
    amount_paisa: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    gateway_reference: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()
