from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.keys.schemas import ApiKeyCreated
from api.schemas import AmountPaisa, BalanceOut, RequestModel, TransactionOut
from domain.balance_rules import MAX_ALERT_THRESHOLD_PAISA

AlertThreshold = Annotated[
    int | None,
    Field(
        strict=True,
        ge=0,
        le=MAX_ALERT_THRESHOLD_PAISA,
        description="Low-balance alert threshold in paisa, 0 to ₹10,00,000; "
        "null: the minimum balance",
        examples=[50000],
    ),
]
MarginRate = Annotated[
    Decimal | None,
    Field(
        ge=0,
        le=10,
        max_digits=8,
        decimal_places=4,
        description="This account's margin rate (default 0.30), a number or decimal string; "
        "null: the default",
        examples=["0.30"],
    ),
]


class AccountCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Acme Clinics", "email": "billing@acme.example"}],
        },
    )

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    email: str = Field(
        min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$", examples=["a@b.example"]
    )
    margin_rate: MarginRate = None
    alert_threshold_paisa: AlertThreshold = None


class AutoRechargeIn(RequestModel):
    enabled: bool = Field(strict=True)
    threshold_paisa: int | None = Field(
        None,
        strict=True,
        ge=0,
        le=1_000_000_000,
        description="Recharge when available − reserved drops below this",
    )
    amount_paisa: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=1_000_000_000,
        description="Charged to the saved card per crossing (the checkout bounds apply)",
    )


class AccountPatch(RequestModel):
    """Only the fields sent change. A customer key may change its own account's
    `alert_threshold_paisa` and `auto_recharge`; an admin key also `name`, `email` and
    `margin_rate`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"alert_threshold_paisa": 50000},
                {
                    "auto_recharge": {
                        "enabled": True,
                        "threshold_paisa": 20000,
                        "amount_paisa": 100000,
                    }
                },
            ]
        },
    )

    alert_threshold_paisa: AlertThreshold = None
    auto_recharge: AutoRechargeIn | None = None
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"\S")
    email: str | None = Field(None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    margin_rate: MarginRate = None


class AutoRechargeOut(BaseModel):
    enabled: bool
    threshold_paisa: int | None
    amount_paisa: int | None
    consecutive_failures: int
    has_saved_method: bool


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str
    margin_rate: str = Field(description="Effective margin rate as a decimal string")
    min_balance_paisa: int
    alert_threshold_paisa: int | None
    created_at: datetime
    auto_recharge: AutoRechargeOut | None = None


class AccountCreated(BaseModel):
    account: AccountOut
    balance: BalanceOut
    api_key: ApiKeyCreated = Field(description="A customer key for this account, shown once")


class TopUpCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount_paisa": 50000, "payment_reference": "pay_001"}]},
    )

    amount_paisa: AmountPaisa
    payment_reference: str = Field(
        min_length=1,
        max_length=200,
        description="The payment's id at the gateway; a top-up is idempotent on it",
    )


class TopUpOut(BaseModel):
    transaction: TransactionOut
    balance: BalanceOut
