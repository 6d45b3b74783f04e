from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AmountPaisa, RequestModel


class CheckoutCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount_paisa": 100000, "save_method": True}]},
    )

    amount_paisa: AmountPaisa = Field(
        description="Credits to buy, in paisa: ₹100 to ₹5,00,000 unless configured otherwise"
    )
    save_method: bool = Field(
        False, strict=True, description="Save the card for auto-recharge (contract §6)"
    )


class CheckoutOut(BaseModel):
    checkout_id: str
    account_id: str
    order_id: str | None
    amount_paisa: int
    currency: Literal["INR"] = "INR"
    status: Literal["created", "paid", "failed", "expired"]
    kind: Literal["customer", "auto_recharge"]
    save_method: bool
    payment_id: str | None = Field(None, description="The gateway payment that paid it")
    failure_reason: str | None = None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    receipt_url: str | None = Field(None, description="The printable receipt, once paid")


class CheckoutCreated(CheckoutOut):
    key_id: str = Field(description="The gateway's public key id, for Razorpay Checkout")


class UnmatchedPayment(BaseModel):
    event_id: int
    event: str
    disposition: str = Field(
        description="unknown_order, amount_mismatch, currency_mismatch, no_order"
    )
    detail: str | None
    payment_id: str | None
    order_id: str | None
    account_id: str | None = Field(description="From the payment's notes, if any")
    amount_paisa: int | None
    currency: str | None
    deliveries: int
    received_at: datetime


class UnmatchedPage(BaseModel):
    items: list[UnmatchedPayment]
    next_cursor: str | None


class WebhookAck(BaseModel):
    status: Literal["accepted"] = "accepted"
    event_id: int
    disposition: str | None = None
