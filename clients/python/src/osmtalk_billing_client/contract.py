"""The Temporal contract of osmTalk Billing's calls (CONTRACT.md §3), as an orchestrator sees it:
names, ids, call-id rule, enums and the typed shapes of the workflow input, the `authorize`
update, the `usage` and `hangup` signals, the `status` query and the result.

Vendored from the billing server's `domain.contracts` (with the enums of `domain.channels` and
`domain.rating.UsageLine`), standard library only. The server's test
`tests/clients/test_contract_agreement.py` fails when a constant, an enum member or a field
(name, type, default) here differs from the server's: change both together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

TASK_QUEUE = "billing"
CALL_WORKFLOW = "CallBillingWorkflow"
AUTHORIZE_UPDATE = "authorize"
USAGE_SIGNAL = "usage"
HANGUP_SIGNAL = "hangup"
STATUS_QUERY = "status"
CALL_LATE_USAGE_WORKFLOW = "CallLateUsageWorkflow"  # late usage of a call whose workflow ended
LATE_USAGE_UPDATE = "late_usage"
# Search attributes the client gives at start (the worker sets CallOutcome at the end).
ACCOUNT_ID_ATTRIBUTE = "AccountId"
CALL_CHANNEL_ATTRIBUTE = "CallChannel"
# A start memo entry: the call workflow's history shape the client asks for (the current one
# needs no patch markers; a worker reads it, deploy workers first).
CALL_SHAPE_MEMO = "billing_shape"
CALL_SHAPE = 2

CALL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"
MAX_EVENTS_PER_SIGNAL = 2000

_CALL_ID_PREFIX = "call-"


def call_workflow_id(call_id: str) -> str:
    """`call-<call_id>`: the orchestrator's call_id is the idempotency key of the whole call."""
    return f"{_CALL_ID_PREFIX}{call_id}"


def late_usage_workflow_id(call_id: str) -> str:
    """`late-usage-<call_id>`: where usage for a finalized call goes (Update-with-Start)."""
    return f"late-usage-{call_id}"


def authorize_update_id(account_id: str, channel: str) -> str:
    """Fixed for a call's (account, channel): the server deduplicates a retried authorize."""
    return f"authorize:{channel}:{account_id}"


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


# The quantity fields a usage event may carry for each component.
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


class CallState(StrEnum):
    ACTIVE = "active"
    REFUSED = "refused"
    FINALIZED = "finalized"


@dataclass(frozen=True)
class AuthorizeRequest:
    """The `authorize` update's argument. Fields given must match the workflow's input."""

    call_id: str | None = None
    account_id: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class AuthorizeResult:
    """The `authorize` update's result; repeated for a call_id, the same decision."""

    authorized: bool
    reason: str | None
    hold_paisa: int
    available_paisa: int
    rate_card_version: int | None


@dataclass(frozen=True)
class UsageReport:
    """One usage event. Quantities are ints or exact decimal strings, never floats; only the
    component's units (COMPONENT_UNITS) may be set."""

    event_id: str
    component: Component
    sku: str
    input_tokens: int | str | None = None
    output_tokens: int | str | None = None
    cached_input_tokens: int | str | None = None
    audio_seconds: int | str | None = None
    characters: int | str | None = None
    seconds: int | str | None = None
    occurred_at: str | None = None

    def to_wire(self) -> dict[str, object]:
        """The event as the signal carries it: only the fields that are set."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class UsageBatch:
    """`{"events": [...]}`: many events in one `usage` signal."""

    events: list[UsageReport]

    def to_wire(self) -> dict[str, object]:
        return {"events": [event.to_wire() for event in self.events]}


@dataclass(frozen=True)
class Hangup:
    """The `hangup` signal `{outcome, reason?, ended_at?}`."""

    outcome: Outcome
    reason: str | None = None
    ended_at: str | None = None


@dataclass
class CallStart:
    """The workflow input: `{call_id, account_id, channel, started_at?}`."""

    call_id: str
    account_id: str
    channel: str
    started_at: str | None = None


@dataclass(frozen=True)
class RejectedEvent:
    event_id: str | None
    code: str  # unknown_sku, invalid_component, validation_error, ...
    message: str


@dataclass
class UsageLine:
    component: str
    sku: str
    unit: str
    quantity: str  # exact decimal string


@dataclass(frozen=True)
class CallBreakdown:
    """A call's `breakdown` in paisa: the four components, provider total, margin, total."""

    llm_paisa: int
    stt_paisa: int
    tts_paisa: int
    sip_paisa: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int


@dataclass(frozen=True)
class CallStatus:
    """The `status` query: state, usage so far and the running (then final) breakdown."""

    call_id: str
    account_id: str
    channel: str
    state: CallState
    outcome: Outcome | None
    hangup_reason: str | None
    started_at: str | None
    ended_at: str | None
    usage: list[UsageLine]
    usage_event_count: int
    duplicate_event_count: int
    rejected_event_count: int
    rejected_events: list[RejectedEvent]
    breakdown: CallBreakdown
    rate_card_version: int | None
    margin_rate: str | None
    authorized: bool | None
    runs: int


@dataclass(frozen=True)
class CallResult(CallStatus):
    """The workflow's result: the final status, the decision, and whether a charge was posted."""

    authorization: AuthorizeResult
    charged: bool
    transaction_id: int | None


@dataclass(frozen=True)
class LateUsageStart:
    """`CallLateUsageWorkflow`'s input."""

    call_id: str


@dataclass(frozen=True)
class LateUsageResult:
    """What late usage did (the `late_usage` update's result): the call re-priced over all its
    usage, the difference posted as one `call_adjustment` (none when nothing new)."""

    call_id: str
    accepted: int
    duplicate_event_count: int
    adjustment_paisa: int
    transaction_id: int | None
    breakdown: CallBreakdown
    usage: list[UsageLine] = field(default_factory=list)
    usage_event_count: int = 0
