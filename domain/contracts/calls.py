"""`CallBillingWorkflow`'s shapes: its input, the `authorize` update, the `usage` and `hangup`
signals, the `status` query and the result, and the authorize activity's payloads (finalize's
are `domain.ledger_types`').

Two inbound payloads are read from their raw JSON, not decoded by the converter: the `usage` and
`hangup` signals, which orchestrators build by hand (`usage_events_from_wire`,
`Hangup.from_wire`, which never raise). The converter would drop a whole signal for one
malformed event, where the contract rejects that event alone and counts it in `status`, and it
would turn 1.5 tokens into 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from domain.channels import HANGUP_OUTCOMES, Component, Outcome
from domain.contracts import DEFAULT_MAX_CALL_DURATION_SECONDS, CallState
from domain.ledger_types import AuthorizeDecision
from domain.rating import Breakdown, UsageLine, UsageTotals

# --- authorize ---------------------------------------------------------------


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

    @classmethod
    def of(cls, decision: AuthorizeDecision) -> AuthorizeResult:
        return cls(
            authorized=decision.authorized,
            reason=decision.reason,
            hold_paisa=decision.hold_paisa,
            available_paisa=decision.available_paisa,
            rate_card_version=decision.rate_card_version,
        )


@dataclass(frozen=True)
class AuthorizeCallInput:
    """The authorize activity's input."""

    call_id: str
    account_id: str
    channel: str
    started_at: str | None = None


@dataclass(frozen=True)
class CallAuthorization:
    """The authorize activity's result: the ledger's decision (with the pinned rate card and
    margin rate) and the worker's maximum call duration."""

    decision: AuthorizeDecision
    max_duration_seconds: int = DEFAULT_MAX_CALL_DURATION_SECONDS


# --- signals -----------------------------------------------------------------


@dataclass(frozen=True)
class UsageReport:
    """One event of the `usage` signal. Quantities (the units of `domain.channels.
    COMPONENT_UNITS`) are ints or exact decimal strings, never floats."""

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


def usage_events_from_wire(payload: object) -> list[object] | None:
    """The raw events of a `usage` signal (one event or `{"events": [...]}`), each still to be
    validated; None when `events` is not a list."""
    if isinstance(payload, Mapping) and "events" in payload:
        events = payload["events"]
        return list(events) if isinstance(events, list) else None
    return [payload]


def _iso_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return None
    return value


@dataclass(frozen=True)
class Hangup:
    """The `hangup` signal `{outcome, reason?, ended_at?}`, and the call's end as the workflow
    keeps it (also `abandoned`, after the maximum duration)."""

    outcome: Outcome
    reason: str | None = None
    ended_at: str | None = None

    @classmethod
    def from_wire(cls, payload: object) -> Hangup | None:
        """The signal's hangup, or None when it names no outcome an orchestrator may send.
        A reason is cut to 500 characters, an ended_at that is not ISO time dropped."""
        if not isinstance(payload, Mapping):
            return None
        outcome = payload.get("outcome")
        if not isinstance(outcome, str) or outcome not in HANGUP_OUTCOMES:
            return None
        reason = payload.get("reason")
        return cls(
            outcome=Outcome(outcome),
            reason=str(reason)[:500] if reason is not None else None,
            ended_at=_iso_or_none(payload.get("ended_at")),
        )


# --- input, status, result ---------------------------------------------------


@dataclass(frozen=True)
class RejectedEvent:
    event_id: str | None
    code: str  # the API's problem code: unknown_sku, invalid_component, validation_error, ...
    message: str


@dataclass
class CallCarry:
    """A call's state handed from one run to the next on continue-as-new.

    `ledgered` (runs since the ledger keeps usage): `usage` and `usage_event_count` are the
    ledger's, `pending_events_json` were accepted but not checkpointed yet, and no event ids are
    carried: the ledger's unique (call_id, event_id) dedupes across runs. Not `ledgered` (a carry
    written before): `usage` is the workflow's own total, not in the ledger, and
    `recent_event_ids` its last ids."""

    authorization: CallAuthorization
    started_at: str
    deadline: str
    usage: UsageTotals
    usage_event_count: int
    duplicate_event_count: int
    rejected_event_count: int
    rejected_events: list[RejectedEvent]
    recent_event_ids: list[str] = field(default_factory=list)
    hangup: Hangup | None = None
    runs: int = 1
    ledgered: bool = False
    pending_events_json: str = ""  # `call_usage.events_to_json`: cheap to carry by the thousand


@dataclass
class CallStart:
    """The workflow input an orchestrator sends: `{call_id, account_id, channel, started_at?}`.
    `channel` stays a string: an unknown one is refused (`invalid_channel`), not a failed
    workflow task."""

    call_id: str
    account_id: str
    channel: str
    started_at: str | None = None


@dataclass
class CallInput(CallStart):
    """What the workflow runs with: the start, plus `carry` (set only by continue-as-new)."""

    carry: CallCarry | None = None


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

    @classmethod
    def of(cls, breakdown: Breakdown) -> CallBreakdown:
        return cls(**{f.name: getattr(breakdown, f.name) for f in fields(cls)})


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
    rejected_events: list[RejectedEvent]  # the first few in detail; all are counted
    breakdown: CallBreakdown
    rate_card_version: int | None
    margin_rate: str | None
    authorized: bool | None
    runs: int  # continue-as-new runs so far, this one included


@dataclass(frozen=True)
class CallResult(CallStatus):
    """The workflow's result (seen by ops in the Temporal UI): the final status, the decision,
    and whether a charge was posted."""

    authorization: AuthorizeResult
    charged: bool
    transaction_id: int | None

    @classmethod
    def of(
        cls,
        status: CallStatus,
        authorization: AuthorizeResult,
        *,
        charged: bool,
        transaction_id: int | None,
    ) -> CallResult:
        return cls(
            **{f.name: getattr(status, f.name) for f in fields(CallStatus)},
            authorization=authorization,
            charged=charged,
            transaction_id=transaction_id,
        )
