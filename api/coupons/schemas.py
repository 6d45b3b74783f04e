from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AmountPaisa, BalanceOut, RequestModel


class CouponCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "DIWALI100",
                    "bonus_paisa": 10000,
                    "max_redemptions": 500,
                    "expires_at": "2026-12-31T23:59:59+05:30",
                    "promo_expires_at": "2027-03-31T23:59:59+05:30",
                }
            ]
        },
    )

    code: str = Field(
        min_length=1, max_length=64, pattern=r"^\S+$", description="Case-sensitive, no spaces"
    )
    bonus_paisa: AmountPaisa
    max_redemptions: int | None = Field(None, strict=True, ge=1, le=10_000_000)
    expires_at: datetime | None = Field(None, description="Last moment the code can be redeemed")
    promo_expires_at: datetime | None = Field(
        None, description="When the promo credit it grants expires (never when null)"
    )


class CouponOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    bonus_paisa: int
    max_redemptions: int | None
    redemption_count: int
    expires_at: datetime | None
    promo_expires_at: datetime | None
    created_at: datetime


class CouponCode(RequestModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"code": "DIWALI100"}]}
    )

    code: str = Field(min_length=1, max_length=64, description="Case-sensitive")


class CouponPreview(BaseModel):
    code: str
    bonus_paisa: int
    promo_expires_at: datetime | None


class CouponRedeemed(BaseModel):
    code: str
    bonus_paisa: int
    transaction_id: int
    promo_expires_at: datetime | None
    balance: BalanceOut
