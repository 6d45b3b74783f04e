"""Typed usage events, one constructor per component:

    llm_usage("openai/gpt-4o-mini", input_tokens=1200, output_tokens=80)
    stt_usage("deepgram/nova-2", audio_seconds=Decimal("12.5"))
    tts_usage("elevenlabs/turbo", characters=310)
    sip_usage("plivo/in-outbound", seconds=60)

Quantities are ints or Decimals (sent as exact decimal strings), never floats. Each event gets a
fresh `event_id` unless one is given: the id is what makes a resend harmless (the call counts an
event_id once), so keep it with the event until it has been accepted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from osmtalk_billing_client.contract import Component, UsageReport
from osmtalk_billing_client.errors import UsageRejected

Quantity = int | Decimal


def _quantity(name: str, value: Quantity | None) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise UsageRejected(f"{name} must be an int or a Decimal, not {type(value).__name__}")
    if value < 0 or (isinstance(value, Decimal) and not value.is_finite()):
        raise UsageRejected(f"{name} must be a finite quantity ≥ 0")
    return value if isinstance(value, int) else format(value, "f")


def _event(
    component: Component,
    sku: str,
    event_id: str | None,
    occurred_at: datetime | str | None,
    **quantities: Quantity | None,
) -> UsageReport:
    if not sku:
        raise UsageRejected("sku is required")
    when = occurred_at.isoformat() if isinstance(occurred_at, datetime) else occurred_at
    return UsageReport(
        event_id=event_id or uuid.uuid4().hex,
        component=component,
        sku=sku,
        occurred_at=when,
        **{name: _quantity(name, value) for name, value in quantities.items()},
    )


def llm_usage(
    sku: str,
    *,
    input_tokens: Quantity = 0,
    output_tokens: Quantity = 0,
    cached_input_tokens: Quantity | None = None,
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
) -> UsageReport:
    return _event(
        Component.LLM,
        sku,
        event_id,
        occurred_at,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached_input_tokens,
    )


def stt_usage(
    sku: str,
    audio_seconds: Quantity,
    *,
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
) -> UsageReport:
    return _event(Component.STT, sku, event_id, occurred_at, audio_seconds=audio_seconds)


def tts_usage(
    sku: str,
    characters: Quantity,
    *,
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
) -> UsageReport:
    return _event(Component.TTS, sku, event_id, occurred_at, characters=characters)


def sip_usage(
    sku: str,
    seconds: Quantity,
    *,
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
) -> UsageReport:
    return _event(Component.SIP, sku, event_id, occurred_at, seconds=seconds)
