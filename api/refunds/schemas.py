from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AmountPaisa, RequestModel


class RefundCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount_paisa": 20000}, {}]}
    )

    amount_paisa: AmountPaisa | None = Field(
        None, description="Omit to refund all refundable paid balance"
    )


class RefundPartOut(BaseModel):
    """Where part of a refund went: `gateway` (a refund to the card/UPI payment `payment_id`) or
    `payout` (a bank transfer of balance that came without a gateway payment)."""

    part_no: int
    kind: Literal["gateway", "payout"]
    payment_id: str | None
    amount_paisa: int
    status: Literal["pending", "processed", "failed"]
    gateway_reference: str | None = Field(
        None, description="The gateway's refund id (`rfnd_…`) or payout id (`pout_…`)"
    )
    failure_reason: str | None = Field(
        None, description="Why a failed part failed (its amount was returned to the balance)"
    )


class RefundOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "ref_5e1a",
                    "account_id": "acc_1f2e",
                    "amount_paisa": 20000,
                    "status": "completed",
                    "failure_reason": None,
                    "parts": [
                        {
                            "part_no": 1,
                            "kind": "gateway",
                            "payment_id": "pay_29QQoUBi66xm2f",
                            "amount_paisa": 15000,
                            "status": "processed",
                            "gateway_reference": "rfnd_FP8QHiV938haTz",
                            "failure_reason": None,
                        },
                        {
                            "part_no": 2,
                            "kind": "payout",
                            "payment_id": None,
                            "amount_paisa": 5000,
                            "status": "processed",
                            "gateway_reference": "pout_00000000000001",
                            "failure_reason": None,
                        },
                    ],
                    "created_at": "2026-11-28T10:00:00Z",
                    "updated_at": "2026-11-28T10:00:00Z",
                }
            ]
        },
    )

    id: str
    account_id: str
    amount_paisa: int
    status: Literal["pending", "completed", "failed"]
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    parts: list[RefundPartOut] = Field(
        default_factory=list,
        description="The payments it goes back to, newest first, and a payout for the rest",
    )


class PayoutAccountIn(RequestModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"fund_account_id": "fa_00000000000001"}]}
    )

    fund_account_id: str | None = Field(
        description="The customer's RazorpayX fund account (bank account) for refund payouts; "
        "null removes it",
        pattern=r"^fa_[A-Za-z0-9]{1,40}$",
    )


class PayoutAccountOut(BaseModel):
    account_id: str
    fund_account_id: str | None
