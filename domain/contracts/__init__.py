"""The Temporal contract of billing (CONTRACT.md §3), one package: here the task queue, the
workflow, update, signal, query and activity names, the workflow ids and the states; the typed
shapes that cross each workflow's boundary in `calls`, `accounts` and `refunds`.

Stdlib and `domain` only: workflows import it inside the sandbox, the API and the orchestrator
client outside it. Temporal's JSON converter encodes every dataclass under its field names,
which are the contract's, so the package types the wire format without changing it.
"""

from __future__ import annotations

from enum import StrEnum

# --- names ---------------------------------------------------------------------------------------

TASK_QUEUE = "billing"

CALL_WORKFLOW = "CallBillingWorkflow"
CALL_LATE_USAGE_WORKFLOW = "CallLateUsageWorkflow"  # late usage of a call whose workflow ended
ACCOUNT_WORKFLOW = "AccountWorkflow"
REFUND_WORKFLOW = "RefundWorkflow"

AUTHORIZE_UPDATE = "authorize"  # CallBillingWorkflow: AuthorizeRequest -> AuthorizeResult
USAGE_SIGNAL = "usage"  # CallBillingWorkflow: one UsageReport or a UsageBatch
HANGUP_SIGNAL = "hangup"  # CallBillingWorkflow: Hangup
BALANCE_CHANGED_SIGNAL = "balance_changed"  # AccountWorkflow: domain.ledger_types.BalanceSnapshot
STATUS_QUERY = "status"  # CallStatus, AccountStatus, RefundResult
LATE_USAGE_UPDATE = "late_usage"  # CallLateUsageWorkflow: a usage payload -> LateUsageResult

CALL_AUTHORIZE_ACTIVITY = "call_authorize"  # AuthorizeCallInput -> CallAuthorization
CALL_FINALIZE_ACTIVITY = "call_finalize"  # FinalizeCallRequest -> FinalizedCall (ledger_types)
CALL_CHECKPOINT_ACTIVITY = "call_checkpoint"  # UsageCheckpoint -> CheckpointedUsage
CALL_VOID_ACTIVITY = "call_void"  # CallVoid -> None: an authorize that failed leaves no hold
CALL_LATE_USAGE_ACTIVITY = "call_late_usage"  # LateUsage -> LateUsageResult
RECONCILE_ORPHANED_CALLS_ACTIVITY = "reconcile_orphaned_calls"  # OrphanSweep -> OrphanSweepReport
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
DEFAULT_LATE_USAGE_WINDOW_SECONDS = 15 * 60  # LATE_USAGE_WINDOW_SECONDS (contract §3)
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


def late_usage_workflow_id(call_id: str) -> str:
    """`late-usage-<call_id>`: deliberately not `call-…`, which `call_id_of` reads as a call."""
    return f"late-usage-{call_id}"


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
