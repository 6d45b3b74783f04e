"""The Temporal contract of billing (CONTRACT.md §3): the task queue, the workflow, update,
signal, query and activity names, the workflow ids, and the typed shapes that cross them.

Stdlib and `domain` only: workflows import it inside the sandbox, the API and the orchestrator
client outside it. Temporal's JSON converter encodes every dataclass here under its field names,
which are the contract's, so this module types the wire format without changing it.

Two inbound payloads are read from their raw JSON, not decoded by the converter: the `usage` and
`hangup` signals, which orchestrators build by hand (`usage_events_from_wire`,
`Hangup.from_wire`). The converter would drop a whole signal for one malformed event, where the
contract rejects that event alone and counts it in `status`, and it would turn 1.5 tokens into 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum

from domain.channels import HANGUP_OUTCOMES, Component, Outcome
from domain.ledger_types import AuthorizeDecision
from domain.rating import Breakdown, UsageLine, UsageTotals

# --- names ---------------------------------------------------------------------------------------

TASK_QUEUE = "billing"

CALL_WORKFLOW = "CallBillingWorkflow"
ACCOUNT_WORKFLOW = "AccountWorkflow"
REFUND_WORKFLOW = "RefundWorkflow"

AUTHORIZE_UPDATE = "authorize"  # CallBillingWorkflow: AuthorizeRequest -> AuthorizeResult
USAGE_SIGNAL = "usage"  # CallBillingWorkflow: one UsageReport or a UsageBatch
HANGUP_SIGNAL = "hangup"  # CallBillingWorkflow: Hangup
BALANCE_CHANGED_SIGNAL = "balance_changed"  # AccountWorkflow: domain.ledger_types.BalanceSnapshot
STATUS_QUERY = "status"  # CallStatus, AccountStatus, RefundResult

CALL_AUTHORIZE_ACTIVITY = "call_authorize"  # AuthorizeCallInput -> CallAuthorization
CALL_FINALIZE_ACTIVITY = "call_finalize"  # FinalizeCallRequest -> FinalizedCall (ledger_types)
LOW_BALANCE_ALERT_ACTIVITY = "send_low_balance_alert"  # LowBalanceAlert -> EmailOutcome
REFUND_START_ACTIVITY = "refund_start"  # RefundInput -> RefundRecord
REFUND_GATEWAY_ACTIVITY = "refund_gateway"  # GatewayRequest -> GatewayOutcome
REFUND_COMPLETE_ACTIVITY = "refund_complete"  # RefundCompletion -> RefundRecord
REFUND_FAIL_ACTIVITY = "refund_fail"  # RefundFailure -> RefundRecord
REFUND_EMAIL_ACTIVITY = "refund_email"  # refund id -> EmailOutcome

# Keyword search attributes of a call's workflow, for ops in the Temporal UI.
ACCOUNT_ID_ATTRIBUTE = "AccountId"
CALL_CHANNEL_ATTRIBUTE = "CallChannel"
CALL_OUTCOME_ATTRIBUTE = "CallOutcome"

DEFAULT_MAX_CALL_DURATION_SECONDS = 4 * 3600
ACCOUNT_SIGNALS_PER_RUN = 1000  # AccountWorkflow continues as new after this many signals

# --- workflow and update ids ----------------------------------------------------------------------

_CALL_ID_PREFIX = "call-"


def call_workflow_id(call_id: str) -> str:
    """`call-<call_id>`: the orchestrator's call_id is the idempotency key of the whole call."""
    return f"{_CALL_ID_PREFIX}{call_id}"


def call_id_of(workflow_id: str) -> str | None:
    """The call_id of a call's workflow id; None for any other workflow."""
    if workflow_id.startswith(_CALL_ID_PREFIX):
        return workflow_id[len(_CALL_ID_PREFIX) :]
    return None


def account_workflow_id(account_id: str) -> str:
    return f"account-{account_id}"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund-{refund_id}"


def authorize_update_id(account_id: str, channel: str) -> str:
    """Fixed for a call's (account, channel): the server deduplicates a retried authorize by it,
    while a request naming another account or channel still reaches the validator (conflict)."""
    return f"authorize:{channel}:{account_id}"


# --- states ---------------------------------------------------------------------------------------


class CallState(StrEnum):
    """`state` of a call's `status`. The ledger's call rows (and `GET /v1/calls/{id}`) know only
    ACTIVE and FINALIZED: a refused call is stored finalized."""

    ACTIVE = "active"
    REFUSED = "refused"
    FINALIZED = "finalized"


class HoldStatus(StrEnum):
    ACTIVE = "active"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


class RefundStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"  # the money is back on the paid balance


class CheckoutStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


class EmailOutcome(StrEnum):
    """What an email activity did (at most once per dedupe key)."""

    SENT = "sent"
    DUPLICATE = "duplicate"  # already sent, or in doubt: never sent twice
    NO_ACCOUNT = "no_account"
    NOT_SENT = "not_sent"  # the workflow gave up retrying


# --- CallBillingWorkflow: authorize ---------------------------------------------------------------


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


# --- CallBillingWorkflow: signals -----------------------------------------------------------------


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


# --- CallBillingWorkflow: input, status, result ---------------------------------------------------


@dataclass(frozen=True)
class RejectedEvent:
    event_id: str | None
    code: str  # the API's problem code: unknown_sku, invalid_component, validation_error, ...
    message: str


@dataclass
class CallCarry:
    """A call's state handed from one run to the next on continue-as-new."""

    authorization: CallAuthorization
    started_at: str
    deadline: str
    usage: UsageTotals
    usage_event_count: int
    duplicate_event_count: int
    rejected_event_count: int
    rejected_events: list[RejectedEvent]
    recent_event_ids: list[str]
    hangup: Hangup | None = None
    runs: int = 1


@dataclass
class CallInput:
    """The workflow input `{call_id, account_id, channel, started_at?}`. `channel` stays a
    string: an unknown one is refused (`invalid_channel`), not a failed workflow task. `carry`
    is set only by continue-as-new."""

    call_id: str
    account_id: str
    channel: str
    started_at: str | None = None
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


# --- AccountWorkflow ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowBalanceAlert:
    """The low-balance email activity's input, one per crossing (`dedupe_key`)."""

    account_id: str
    dedupe_key: str
    crossing_version: int
    available_paisa: int
    paid_paisa: int
    promo_paisa: int
    threshold_paisa: int


@dataclass
class AccountState:
    last_version: int = -1
    paid_paisa: int = 0
    promo_paisa: int = 0
    reserved_paisa: int = 0
    available_paisa: int | None = None
    threshold_paisa: int | None = None
    armed: bool = True
    crossings: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    stale_ignored: int = 0
    pending_alert: LowBalanceAlert | None = None
    sent_alert_keys: list[str] = field(default_factory=list)  # the last few, for status


@dataclass
class AccountWorkflowInput:
    account_id: str
    state: AccountState | None = None  # carried by continue-as-new
    continue_as_new_after_signals: int = ACCOUNT_SIGNALS_PER_RUN


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    state: AccountState
    signals_this_run: int


# --- RefundWorkflow -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundInput:
    """`{refund_id, account_id, amount_paisa?}`: no amount refunds all the refundable balance."""

    refund_id: str
    account_id: str
    amount_paisa: int | None = None


@dataclass(frozen=True)
class RefundRecord:
    """The refund row as the ledger has it (the ledger activities' result)."""

    refund_id: str
    account_id: str
    amount_paisa: int
    status: RefundStatus
    failure_reason: str | None = None
    gateway_reference: str | None = None


@dataclass(frozen=True)
class GatewayRequest:
    refund_id: str
    account_id: str
    amount_paisa: int


@dataclass(frozen=True)
class GatewayOutcome:
    succeeded: bool
    reference: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RefundCompletion:
    refund_id: str
    gateway_reference: str | None


@dataclass(frozen=True)
class RefundFailure:
    refund_id: str
    reason: str


@dataclass
class RefundResult:
    """The refund workflow's `status` query and, once settled, its result."""

    id: str
    account_id: str
    amount_paisa: int | None
    status: RefundStatus
    failure_reason: str | None = None
    gateway_reference: str | None = None
    email: EmailOutcome | None = None
