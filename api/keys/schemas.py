from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AccountId, RequestModel
from ledger.api_keys import Role


class ApiKeyCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "customer", "account_id": "acc_1f2e"}, {"role": "orchestrator"}]
        },
    )

    role: Role
    account_id: AccountId | None = Field(None, description="Required for (only) customer keys")


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    account_id: str | None
    prefix: str = Field(description="The first characters of the key, to recognise it")
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "key_9c1d",
                    "role": "customer",
                    "account_id": "acc_1f2e",
                    "prefix": "osk_AbCdEf",
                    "created_at": "2026-11-28T10:00:00Z",
                    "revoked_at": None,
                    "key": "osk_AbCdEf...",
                }
            ]
        }
    )

    key: str | None = Field(
        description="The secret, shown once (null when an idempotent request is replayed)"
    )
