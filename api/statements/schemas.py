"""Statements and spend insight (contract §4 additions)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class StatementLine(BaseModel):
    kind: str = Field(description="The transaction type")
    count: int
    credits_paisa: int = Field(description="Σ of this type's positive amounts")
    debits_paisa: int = Field(description="Σ of this type's negative amounts, as a positive number")


class StatementOut(BaseModel):
    """opening_balance_paisa + credits_paisa − debits_paisa = closing_balance_paisa, and the
    month's rows of `transactions.csv` add up to the same difference."""

    account_id: str
    month: str = Field(examples=["2026-11"])
    timezone: Literal["Asia/Kolkata"] = "Asia/Kolkata"
    first_day: date
    last_day: date
    period_start: datetime
    period_end: datetime = Field(description="Exclusive")
    opening_balance_paisa: int = Field(description="The balance when the month began")
    credits_paisa: int
    debits_paisa: int
    closing_balance_paisa: int = Field(
        description="The balance when the month ended (so far, for the current month)"
    )
    transaction_count: int
    credits: dict[str, int] = Field(description="Credits by transaction type (paisa)")
    debits: dict[str, int] = Field(description="Debits by transaction type (paisa, positive)")
    lines: list[StatementLine]
    currency: Literal["INR"] = "INR"


class ChannelSpendOut(BaseModel):
    channel: str
    calls: int = Field(description="Charged calls")
    seconds: int = Field(description="Their talk time")
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int
    average_call_paisa: int | None = Field(description="total ÷ calls, half-up; null: no calls")
    per_minute_paisa: int | None = Field(
        description="total ÷ minutes of talk time, half-up; null: no talk time"
    )


class ComponentSpendOut(BaseModel):
    component: str = Field(description="llm, stt, tts or sip")
    provider_paisa: int = Field(description="Provider cost of this component (osmAPI: llm)")


class ApiSpendOut(BaseModel):
    requests: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int


class UsageSummaryOut(BaseModel):
    """Spend whose charge was posted in the month. Σ by_channel totals + osmapi total =
    total_paisa = Σ by_component + margin_paisa."""

    account_id: str
    month: str
    timezone: Literal["Asia/Kolkata"] = "Asia/Kolkata"
    total_paisa: int
    provider_total_paisa: int
    margin_paisa: int
    by_channel: list[ChannelSpendOut]
    by_component: list[ComponentSpendOut]
    osmapi: ApiSpendOut
    currency: Literal["INR"] = "INR"
