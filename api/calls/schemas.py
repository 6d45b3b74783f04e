from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AccountId, RequestModel
from domain.contracts import CALL_ID_PATTERN, MAX_EVENTS_PER_SIGNAL

CallId = Annotated[
    str,
    Field(
        pattern=CALL_ID_PATTERN,
        description="Chosen by the orchestrator; the idempotency key of the whole call",
        examples=["call-2026-11-28-0001"],
    ),
]
CallIdPath = Annotated[str, Path(pattern=CALL_ID_PATTERN, examples=["call-2026-11-28-0001"])]
ChannelName = Literal["phone", "web", "whatsapp", "chat"]
HangupOutcome = Literal["completed", "voicemail", "failed", "no_answer", "busy", "rejected"]
# A quantity: a non-negative integer, or an exact decimal string (never a float).
Quantity = (
    Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
    | Annotated[str, Field(pattern=r"^[0-9]{1,10}(\.[0-9]{1,9})?$")]
)


class AuthorizeCall(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"call_id": "call-2026-11-28-0001", "account_id": "acc_1f2e", "channel": "phone"}
            ]
        },
    )

    call_id: CallId
    account_id: AccountId
    channel: ChannelName
    started_at: datetime | None = None


class AuthorizeOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "call_id": "call-2026-11-28-0001",
                    "authorized": True,
                    "reason": None,
                    "hold_paisa": 1000,
                    "available_paisa": 55000,
                    "rate_card_version": 1,
                }
            ]
        }
    )

    call_id: str
    authorized: bool
    reason: str | None
    hold_paisa: int
    available_paisa: int
    rate_card_version: int | None


class UsageEventIn(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "llm-1",
                    "component": "llm",
                    "sku": "openai/gpt-4o-mini",
                    "input_tokens": 24000,
                    "output_tokens": 2000,
                },
                {
                    "event_id": "stt-1",
                    "component": "stt",
                    "sku": "deepgram/nova-3",
                    "audio_seconds": 60,
                },
            ]
        },
    )

    event_id: str = Field(min_length=1, max_length=200, pattern=r"\S")
    component: Literal["llm", "stt", "tts", "sip"]
    sku: str = Field(min_length=1, max_length=200, examples=["openai/gpt-4o-mini"])
    input_tokens: Quantity | None = None
    output_tokens: Quantity | None = None
    cached_input_tokens: Quantity | None = None
    audio_seconds: Quantity | None = None
    characters: Quantity | None = None
    seconds: Quantity | None = None
    occurred_at: datetime | None = None


class UsageBatch(RequestModel):
    events: list[UsageEventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_SIGNAL)


UsageBody = (
    UsageEventIn
    | UsageBatch
    | Annotated[list[UsageEventIn], Field(min_length=1, max_length=MAX_EVENTS_PER_SIGNAL)]
)


class UsageAccepted(BaseModel):
    call_id: str
    accepted: int = Field(description="Events forwarded to the call (repeats count once)")
    adjustment_paisa: int | None = Field(
        None,
        description="Late usage of a finalized call: the `call_adjustment` it posted "
        "(0 when nothing new); null while the call is in progress",
    )


class Hangup(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"outcome": "completed"}]},
    )

    outcome: HangupOutcome
    reason: str | None = Field(None, max_length=1000)
    ended_at: datetime | None = None


class HangupAccepted(BaseModel):
    call_id: str
    status: Literal["active", "finalized"] = Field(
        description="`finalized` when the call had already been finalized (hangup ignored)"
    )
    outcome: str | None


class BreakdownOut(BaseModel):
    llm_paisa: int = 0
    stt_paisa: int = 0
    tts_paisa: int = 0
    sip_paisa: int = 0
    provider_total_paisa: int = 0
    margin_paisa: int = 0
    total_paisa: int = 0


class UsageLineOut(BaseModel):
    component: str
    sku: str
    unit: str
    quantity: str = Field(description="Exact decimal")


class CallOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "call_id": "call-2026-11-28-0001",
                    "account_id": "acc_1f2e",
                    "channel": "phone",
                    "status": "finalized",
                    "authorized": True,
                    "refusal_reason": None,
                    "outcome": "completed",
                    "hangup_reason": None,
                    "rate_card_version": 1,
                    "margin_rate": "0.3000",
                    "started_at": "2026-11-28T10:00:00Z",
                    "ended_at": "2026-11-28T10:01:00Z",
                    "finalized_at": "2026-11-28T10:01:00Z",
                    "usage": [
                        {
                            "component": "stt",
                            "sku": "deepgram/nova-3",
                            "unit": "audio_seconds",
                            "quantity": "60",
                        }
                    ],
                    "usage_event_count": 4,
                    "breakdown": {
                        "llm_paisa": 40,
                        "stt_paisa": 50,
                        "tts_paisa": 220,
                        "sip_paisa": 30,
                        "provider_total_paisa": 340,
                        "margin_paisa": 102,
                        "total_paisa": 442,
                    },
                }
            ]
        }
    )

    call_id: str
    account_id: str
    channel: str
    status: Literal["active", "finalized"]
    authorized: bool
    refusal_reason: str | None
    outcome: str | None
    hangup_reason: str | None
    rate_card_version: int | None
    margin_rate: str
    started_at: datetime | None
    ended_at: datetime | None
    finalized_at: datetime | None
    usage: list[UsageLineOut]
    usage_event_count: int
    breakdown: BreakdownOut


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None


def usage_lines(rows: list[dict[str, Any]] | None) -> list[UsageLineOut]:
    """A call row's `usage` (written by the ledger from domain.rating.UsageLine)."""
    return [UsageLineOut.model_validate(row) for row in rows or []]
