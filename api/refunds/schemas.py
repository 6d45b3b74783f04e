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


class RefundOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "ref_5e1a",
                    "account_id": "acc_1f2e",
                    "amount_paisa": 20000,
                    "status": "pending",
                    "failure_reason": None,
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
