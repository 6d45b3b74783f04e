"""The rate card the project ships: realistic SKUs, INR per one unit.

Priced so the docs' typical 60-second English phone call comes out at exactly their figures:
24,000 input + 2,000 output tokens on gpt-4o-mini (₹0.40), 60 s of Deepgram audio (₹0.50),
550 characters of ElevenLabs speech (₹2.20), 60 s of an Indian outbound SIP leg (₹0.30)
= ₹3.40 provider cost, ₹1.02 margin, ₹4.42 charged.
"""

from __future__ import annotations

from domain.rating import UnitPrice

DEFAULT_PRICES: list[UnitPrice] = [
    # LLM: USD list prices × ~₹83.33/USD, per token.
    UnitPrice("openai/gpt-4o-mini", "llm", "input_tokens", "0.0000125"),
    UnitPrice("openai/gpt-4o-mini", "llm", "cached_input_tokens", "0.00000625"),
    UnitPrice("openai/gpt-4o-mini", "llm", "output_tokens", "0.00005"),
    UnitPrice("openai/gpt-4o", "llm", "input_tokens", "0.000208"),
    UnitPrice("openai/gpt-4o", "llm", "cached_input_tokens", "0.000104"),
    UnitPrice("openai/gpt-4o", "llm", "output_tokens", "0.000833"),
    UnitPrice("anthropic/claude-haiku-4-5", "llm", "input_tokens", "0.0000833"),
    UnitPrice("anthropic/claude-haiku-4-5", "llm", "cached_input_tokens", "0.00000833"),
    UnitPrice("anthropic/claude-haiku-4-5", "llm", "output_tokens", "0.000417"),
    UnitPrice("google/gemini-2.0-flash", "llm", "input_tokens", "0.00000833"),
    UnitPrice("google/gemini-2.0-flash", "llm", "output_tokens", "0.0000333"),
    # STT per second of audio.
    UnitPrice("deepgram/nova-3", "stt", "audio_seconds", "0.0083"),
    UnitPrice("deepgram/nova-3-multilingual", "stt", "audio_seconds", "0.0100"),
    UnitPrice("sarvam/saarika-v2", "stt", "audio_seconds", "0.0050"),
    # TTS per character.
    UnitPrice("elevenlabs/flash-v2", "tts", "characters", "0.004"),
    UnitPrice("elevenlabs/multilingual-v2", "tts", "characters", "0.0083"),
    UnitPrice("sarvam/bulbul-v2", "tts", "characters", "0.0015"),
    # SIP per second of line time.
    UnitPrice("plivo/in-outbound", "sip", "seconds", "0.005"),
    UnitPrice("plivo/in-inbound", "sip", "seconds", "0.0035"),
    UnitPrice("twilio/in-outbound", "sip", "seconds", "0.0080"),
]

# The docs' "60-second English call", as usage events on the default card.
TYPICAL_PHONE_CALL_USAGE: list[dict[str, object]] = [
    {
        "event_id": "llm-1",
        "component": "llm",
        "sku": "openai/gpt-4o-mini",
        "input_tokens": 24000,
        "output_tokens": 2000,
    },
    {"event_id": "stt-1", "component": "stt", "sku": "deepgram/nova-3", "audio_seconds": 60},
    {"event_id": "tts-1", "component": "tts", "sku": "elevenlabs/flash-v2", "characters": 550},
    {"event_id": "sip-1", "component": "sip", "sku": "plivo/in-outbound", "seconds": 60},
]
