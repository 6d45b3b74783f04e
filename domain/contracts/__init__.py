"""The Temporal contract of billing (CONTRACT.md §3), one package: here the task queue, the
workflow, update, signal, query and activity names, the workflow ids and the states; the typed
shapes that cross each workflow's boundary in `calls`, `accounts` and `refunds`.

Stdlib and `domain` only: workflows import it inside the sandbox, the API and the orchestrator
client outside it. Temporal's JSON converter encodes every dataclass under its field names,
which are the contract's, so the package types the wire format without changing it.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

# --- names ---------------------------------------------------------------------------------------

TASK_QUEUE = "billing"

CALL_WORKFLOW = "CallBillingWorkflow"
CALL_LATE_USAGE_WORKFLOW = "CallLateUsageWorkflow"  # late usage of a call whose workflow ended
ACCOUNT_WORKFLOW = "AccountWorkflow"
REFUND_WORKFLOW = "RefundWorkflow"
RECONCILER_WORKFLOW = "ReconcilerWorkflow"
CHECKOUT_WORKFLOW = "CheckoutWorkflow"
AUTO_RECHARGE_WORKFLOW = "AutoRechargeWorkflow"

AUTHORIZE_UPDATE = "authorize"  # CallBillingWorkflow: AuthorizeRequest -> AuthorizeResult
USAGE_SIGNAL = "usage"  # CallBillingWorkflow: one UsageReport or a UsageBatch
HANGUP_SIGNAL = "hangup"  # CallBillingWorkflow: Hangup
# AccountWorkflow: a BalanceSnapshot. Legacy: nothing sends it since the alert outbox; still
# handled for workflows started before it (and their histories).
BALANCE_CHANGED_SIGNAL = "balance_changed"
LOW_BALANCE_SIGNAL = "low_balance"  # AccountWorkflow: accounts.LowBalanceAlert (an outbox row)
REFUND_DECISION_UPDATE = "decision"  # RefundWorkflow: RefundDecisionRequest -> RefundResult
REFUND_DECISION_UPDATE_ID = "decision"  # one per refund: the server dedupes a retried request
STATUS_QUERY = "status"  # CallStatus, AccountStatus, RefundResult, CheckoutProgress
GATEWAY_EVENT_SIGNAL = "gateway_event"  # CheckoutWorkflow: payments.GatewayEventRef
LATE_USAGE_UPDATE = "late_usage"  # CallLateUsageWorkflow: a usage payload -> LateUsageResult

CALL_AUTHORIZE_ACTIVITY = "call_authorize"  # AuthorizeCallInput -> CallAuthorization
CALL_FINALIZE_ACTIVITY = "call_finalize"  # FinalizeCallRequest -> FinalizedCall (ledger_types)
CALL_CHECKPOINT_ACTIVITY = "call_checkpoint"  # UsageCheckpoint -> CheckpointedUsage
CALL_VOID_ACTIVITY = "call_void"  # CallVoid -> None: an authorize that failed leaves no hold
CALL_LATE_USAGE_ACTIVITY = "call_late_usage"  # LateUsage -> LateUsageResult
LOW_BALANCE_ALERT_ACTIVITY = "send_low_balance_alert"  # LowBalanceAlert -> EmailOutcome
REFUND_START_ACTIVITY = "refund_start"  # RefundInput -> RefundRecord
REFUND_GATEWAY_ACTIVITY = "refund_gateway"  # GatewayRequest -> GatewayOutcome
REFUND_COMPLETE_ACTIVITY = "refund_complete"  # RefundCompletion -> RefundRecord
REFUND_FAIL_ACTIVITY = "refund_fail"  # RefundFailure -> RefundRecord
REFUND_EMAIL_ACTIVITY = "refund_email"  # refund id -> EmailOutcome
REFUND_PART_SEND_ACTIVITY = "refund_part_send"  # RefundPartRequest -> RefundPartRecord
REFUND_PART_SETTLE_ACTIVITY = "refund_part_settle"  # RefundPartSettlement -> RefundPartRecord
REFUND_FINISH_ACTIVITY = "refund_finish"  # refund id -> RefundRecord
# RefundWorkflow signal: a refund.processed / refund.failed webhook for one of its parts.
REFUND_PART_EVENT_SIGNAL = "refund_part_event"  # RefundPartEvent
REFUND_PARTS_PATCH = "refund-parts"  # workflow.patched id: parts instead of one gateway refund
CHECKOUT_LOAD_ACTIVITY = "checkout_load"  # order id -> payments.CheckoutRecord | None
CHECKOUT_APPLY_EVENT_ACTIVITY = "checkout_apply_event"  # GatewayEventRef -> EventApplied
CHECKOUT_EXPIRE_ACTIVITY = "checkout_expire"  # order id -> CheckoutRecord | None
CHECKOUT_CHARGE_ACTIVITY = "checkout_charge_recurring"  # order id -> RecurringChargeResult
AUTO_RECHARGE_ACTIVITY = "auto_recharge_start"  # checkout id -> AutoRechargeStarted
AUTO_RECHARGE_EMAIL_ACTIVITY = "auto_recharge_failed_email"  # checkout id -> EmailOutcome

# The reconciler's steps, one activity each (reconciler.StepReport each), in the order a run
# takes them. The Schedule passes the tuple as the run's input (reconciler.ReconcilerInput), so
# a run replays with the steps it started with even after a deploy changes the tuple.
# Calls the ledger has active whose workflow is closed or missing: finalized as abandoned,
# charging their checkpointed usage (call_usage.OrphanSweep, optional -> StepReport).
RECONCILE_ORPHANED_CALLS_ACTIVITY = "reconcile_orphaned_calls"
RELEASE_EXPIRED_HOLDS_STEP = "reconcile_release_expired_holds"
REDRIVE_PENDING_REFUNDS_STEP = "reconcile_redrive_pending_refunds"
RECLAIM_STUCK_EMAILS_STEP = "reconcile_reclaim_stuck_emails"
DELIVER_ALERT_OUTBOX_STEP = "reconcile_deliver_alert_outbox"
PRUNE_IDEMPOTENCY_STEP = "reconcile_prune_idempotency_records"
RECONCILER_STEPS: tuple[str, ...] = (
    RECONCILE_ORPHANED_CALLS_ACTIVITY,  # first: a lost call is charged before its hold expires
    RELEASE_EXPIRED_HOLDS_STEP,
    REDRIVE_PENDING_REFUNDS_STEP,
    RECLAIM_STUCK_EMAILS_STEP,
    DELIVER_ALERT_OUTBOX_STEP,
    PRUNE_IDEMPOTENCY_STEP,
)
RECONCILER_SCHEDULE_ID = "billing-reconciler"  # also the id prefix of its runs
RECONCILER_INTERVAL_SECONDS = 60

# Keyword search attributes of a call's workflow, for ops in the Temporal UI.
ACCOUNT_ID_ATTRIBUTE = "AccountId"
CALL_CHANNEL_ATTRIBUTE = "CallChannel"
CALL_OUTCOME_ATTRIBUTE = "CallOutcome"
# A start memo entry by which a client asks for the call workflow's current history shape. A
# run started with it needs none of the patch markers that tell the earlier shapes apart in
# runs started without it (each marker also upserts the TemporalChangeVersion attribute: a
# history event and a visibility write per call). 2: checkpoints at usage signals.
CALL_SHAPE_MEMO = "billing_shape"
CALL_SHAPE = 2

DEFAULT_MAX_CALL_DURATION_SECONDS = 4 * 3600
DEFAULT_LATE_USAGE_WINDOW_SECONDS = 15 * 60  # LATE_USAGE_WINDOW_SECONDS (contract §3)
ACCOUNT_SIGNALS_PER_RUN = 1000  # AccountWorkflow continues as new after this many signals

# What a call id may be (the API's path and body, the clients): it is the idempotency key of the
# whole call and part of the workflow id.
CALL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"
# One usage signal carries at most this many events: keeps a payload well under Temporal's 2 MB.
MAX_EVENTS_PER_SIGNAL = 2000

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


def refund_id_for(account_id: str, idempotency_key: str) -> str:
    """The refund a support request makes: derived from (account, `Idempotency-Key`), so a retry
    after any failure names the same refund (and its workflow), and never a second one."""
    digest = hashlib.sha256(f"{account_id}\n{idempotency_key}".encode()).hexdigest()
    return f"ref_{digest[:32]}"


def low_balance_alert_key(account_id: str, crossing_version: int) -> str:
    """One per crossing: the outbox row's and the email's dedupe key (`version` is the account's
    after the balance change that crossed)."""
    return f"low-balance:{account_id}:{crossing_version}"


def checkout_workflow_id(order_id: str) -> str:
    """`checkout-<order_id>`: one workflow per gateway order (webhooks signal-with-start it)."""
    return f"checkout-{order_id}"


def auto_recharge_workflow_id(checkout_id: str) -> str:
    """`auto-recharge-<checkout_id>`: creates the gateway order of one auto-recharge crossing."""
    return f"auto-recharge-{checkout_id}"


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


class CheckoutKind(StrEnum):
    CUSTOMER = "customer"  # bought on the Billing page or through the API
    AUTO_RECHARGE = "auto_recharge"  # a recurring charge on a saved method, one per crossing


class PaymentDisposition(StrEnum):
    """What became of one stored gateway event (`gateway_events.disposition`)."""

    CREDITED = "credited"  # this event credited the payment
    ALREADY_CREDITED = "already_credited"  # the payment was credited by an earlier event
    CHECKOUT_FAILED = "checkout_failed"  # payment.failed recorded
    IGNORED = "ignored"  # nothing to do (payment.authorized, a failure after the payment)
    UNKNOWN_ORDER = "unknown_order"  # not credited: kept for support
    AMOUNT_MISMATCH = "amount_mismatch"  # not credited: kept for support
    CURRENCY_MISMATCH = "currency_mismatch"  # not credited: kept for support
    NO_ORDER = "no_order"  # a payment event without an order id: kept for support
    REFUND_EVENT = "refund_event"  # stored for the refund workflow (refund.processed/failed)


UNMATCHED_DISPOSITIONS = frozenset(
    {
        PaymentDisposition.UNKNOWN_ORDER,
        PaymentDisposition.AMOUNT_MISMATCH,
        PaymentDisposition.CURRENCY_MISMATCH,
        PaymentDisposition.NO_ORDER,
    }
)


class EmailOutcome(StrEnum):
    """What an email activity did (at most once per dedupe key)."""

    SENT = "sent"
    DUPLICATE = "duplicate"  # already sent, or in doubt: never sent twice
    NO_ACCOUNT = "no_account"
    NOT_SENT = "not_sent"  # the workflow gave up retrying
