from __future__ import annotations

from typing import Annotated, Literal

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


MAX_BATCH = 1000  # ledger.api_requests.MAX_BATCH


class ApiUsageBatchIn(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "requests": [
                        {
                            "request_id": "req_8d2c",
                            "account_id": "acc_1f2e",
                            "sku": "openai/gpt-4o-mini",
                            "input_tokens": 1200,
                            "output_tokens": 300,
                        }
                    ]
                }
            ]
        },
    )

    requests: list[ApiUsageIn] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="1 to 1,000 finished requests, each shaped like the body of POST "
        "/v1/api-usage; each is charged once per request_id",
    )


class ItemError(BaseModel):
    status: int = Field(description="The HTTP status the single-request form would answer")
    code: str = Field(description="Stable error code (not_found, conflict, unknown_sku, ...)")
    detail: str


class ApiUsageItemOut(BaseModel):
    """One request of a batch: `charged` now, `replayed` (charged before under this
    request_id, same body: the first charge is shown), or `failed` (nothing written)."""

    request_id: str
    status: Literal["charged", "replayed", "failed"]
    account_id: str | None = None
    sku: str | None = None
    rate_card_version: int | None = None
    provider_total_paisa: int | None = None
    margin_paisa: int | None = None
    total_paisa: int | None = None
    transaction_id: int | None = None
    error: ItemError | None = None


class ApiUsageBatchOut(BaseModel):
    results: list[ApiUsageItemOut] = Field(description="One per request, in request order")
    charged: int
    replayed: int
    failed: int
    balances: list[BalanceOut] = Field(description="Each account's balance after the batch")
