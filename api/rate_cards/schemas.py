from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import RequestModel


class PriceIn(RequestModel):
    sku: str = Field(min_length=1, max_length=200, pattern=r"^\S+$", examples=["deepgram/nova-3"])
    component: Literal["llm", "stt", "tts", "sip"]
    unit: Literal[
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "audio_seconds",
        "characters",
        "seconds",
    ]
    price_inr: str = Field(
        pattern=r"^[0-9]{1,6}(\.[0-9]{1,12})?$",
        description="INR per one unit, an exact decimal string (never a float)",
        examples=["0.0083"],
    )


class RateCardIn(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "effective_from": "2026-12-01T00:00:00+05:30",
                    "prices": [
                        {
                            "sku": "deepgram/nova-3",
                            "component": "stt",
                            "unit": "audio_seconds",
                            "price_inr": "0.0083",
                        }
                    ],
                }
            ]
        },
    )

    effective_from: datetime | None = Field(None, description="Default: now")
    prices: list[PriceIn] = Field(min_length=1, max_length=1000)


class PriceOut(BaseModel):
    sku: str
    component: str
    unit: str
    price_inr: str


class RateCardOut(BaseModel):
    version: int
    effective_from: str | None
    prices: list[PriceOut]
