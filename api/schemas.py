"""Shared request/response pieces: money types, balances, transactions, pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ledger.balances import BalanceSummary
from ledger.posting import MAX_AMOUNT_PAISA

# Amounts are integers of paisa: strict (no floats, no numeric strings), positive, bounded.
AmountPaisa = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=MAX_AMOUNT_PAISA,
        description="An amount in paisa (₹1 = 100 paisa), a positive integer",
        examples=[50000],
    ),
]
# A margin rate: 0 to 10 with at most 4 decimals, as a number or a decimal string. The schema
# says exactly that (pydantic's own would allow any string for a Decimal).
MARGIN_RATE_PATTERN = r"^(10(\.0{1,4})?|[0-9](\.[0-9]{1,4})?)$"
DecimalMarginRate = Annotated[
    Decimal,
    Field(ge=0, le=10, max_digits=8, decimal_places=4),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 10},
                {"type": "string", "pattern": MARGIN_RATE_PATTERN},
            ]
        }
    ),
]
AccountIdPath = Annotated[
    str, Path(min_length=1, max_length=64, description="The account id", examples=["acc_1f2e"])
]
AccountId = Annotated[str, Field(min_length=1, max_length=64, examples=["acc_1f2e"])]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class BalanceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_1f2e",
                    "available_paisa": 54558,
                    "paid_paisa": 50000,
                    "promo_paisa": 4558,
                    "reserved_paisa": 0,
                    "refundable_paisa": 50000,
                    "month_usage_paisa": 442,
                    "min_balance_paisa": 1000,
                    "alert_threshold_paisa": 1000,
                    "currency": "INR",
                }
            ]
        }
    )

    account_id: str
    available_paisa: int = Field(description="paid + promo")
    paid_paisa: int
    promo_paisa: int
    reserved_paisa: int = Field(
        description="Σ holds of calls in progress (each: its running cost + the minimum balance)"
    )
    refundable_paisa: int = Field(
        description="Paid money no call in progress has a claim on: "
        "max(0, min(paid, available − reserved))"
    )
    month_usage_paisa: int = Field(description="Charges this calendar month (Asia/Kolkata)")
    min_balance_paisa: int
    alert_threshold_paisa: int
    currency: Literal["INR"] = "INR"

    @classmethod
    def of(cls, summary: BalanceSummary) -> BalanceOut:
        b = summary.balance
        return cls(
            account_id=b.account_id,
            available_paisa=b.available_paisa,
            paid_paisa=b.paid_paisa,
            promo_paisa=b.promo_paisa,
            reserved_paisa=b.reserved_paisa,
            refundable_paisa=b.refundable_paisa,
            month_usage_paisa=summary.month_usage_paisa,
            min_balance_paisa=b.min_balance_paisa,
            alert_threshold_paisa=b.alert_threshold_paisa,
        )


class TransactionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "account_id": "acc_1f2e",
                    "kind": "call_charge",
                    "amount_paisa": -442,
                    "paid_delta_paisa": 0,
                    "promo_delta_paisa": -442,
                    "balance_after": 54558,
                    "paid_balance_after": 50000,
                    "promo_balance_after": 4558,
                    "reference": "call-7f3a",
                    "description": "Phone call (completed)",
                    "details": {},
                    "created_at": "2026-11-28T10:00:00Z",
                }
            ]
        },
    )

    id: int
    account_id: str
    kind: str = Field(
        description="topup, promo_grant, coupon, call_charge, call_adjustment (late usage of a "
        "call), api_charge, refund, refund_reversal, promo_expiry, adjustment"
    )
    amount_paisa: int = Field(description="Signed: credits positive, debits negative")
    paid_delta_paisa: int
    promo_delta_paisa: int
    balance_after: int
    paid_balance_after: int
    promo_balance_after: int
    reference: str | None
    description: str
    details: dict[str, Any]
    created_at: datetime


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page"
    )
