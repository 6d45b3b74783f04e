"""Channels, the provider components each one uses, and call outcomes."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    WHATSAPP = "whatsapp"
    CHAT = "chat"


class Component(StrEnum):
    LLM = "llm"
    STT = "stt"
    TTS = "tts"
    SIP = "sip"


COMPONENT_ORDER: tuple[Component, ...] = (
    Component.LLM,
    Component.STT,
    Component.TTS,
    Component.SIP,
)

CHANNEL_COMPONENTS: dict[Channel, frozenset[Component]] = {
    Channel.PHONE: frozenset({Component.LLM, Component.STT, Component.TTS, Component.SIP}),
    Channel.WEB: frozenset({Component.LLM, Component.STT, Component.TTS}),
    Channel.WHATSAPP: frozenset({Component.LLM, Component.STT, Component.TTS}),
    Channel.CHAT: frozenset({Component.LLM}),
}

# The quantity fields a usage report may carry for each component, which are also rate-card units.
COMPONENT_UNITS: dict[Component, tuple[str, ...]] = {
    Component.LLM: ("input_tokens", "output_tokens", "cached_input_tokens"),
    Component.STT: ("audio_seconds",),
    Component.TTS: ("characters",),
    Component.SIP: ("seconds",),
}


class Outcome(StrEnum):
    COMPLETED = "completed"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    ABANDONED = "abandoned"  # no hangup within the maximum duration: charged for recorded usage
    REFUSED = "refused"  # authorization refused: never started, never charged


# Outcomes an orchestrator may send with the hangup signal.
HANGUP_OUTCOMES: frozenset[Outcome] = frozenset(
    {
        Outcome.COMPLETED,
        Outcome.VOICEMAIL,
        Outcome.FAILED,
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.REJECTED,
    }
)
CHARGED_OUTCOMES: frozenset[Outcome] = frozenset(
    {Outcome.COMPLETED, Outcome.VOICEMAIL, Outcome.ABANDONED}
)


def is_charged(outcome: str) -> bool:
    return outcome in CHARGED_OUTCOMES
