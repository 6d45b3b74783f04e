from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AccountId, BalanceOut, RequestModel

Tokens = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class ApiAuthorizeIn(RequestModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"account_id": "acc_1f2e"}]}
    )

    account_id: AccountId


class ApiAuthorizeOut(BaseModel):
    account_id: str
    authorized: bool
    reason: str | None
    available_paisa: int
    rate_card_version: int | None


class ApiUsageIn(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "request_id": "req_8d2c",
                    "account_id": "acc_1f2e",
                    "sku": "openai/gpt-4o-mini",
                    "input_tokens": 1200,
                    "output_tokens": 300,
                }
            ]
        },
    )

    request_id: str = Field(min_length=1, max_length=200, description="Idempotency key")
    account_id: AccountId
    sku: str = Field(min_length=1, max_length=200, examples=["openai/gpt-4o-mini"])
    input_tokens: Tokens
    output_tokens: Tokens


class ApiUsageOut(BaseModel):
    request_id: str
    account_id: str
    sku: str
    input_tokens: int
    output_tokens: int
    rate_card_version: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int
    transaction_id: int | None
    balance: BalanceOut
