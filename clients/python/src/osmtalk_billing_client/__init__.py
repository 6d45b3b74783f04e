"""osmTalk Billing's call lifecycle for orchestrators, over Temporal (CONTRACT.md §3).

    from osmtalk_billing_client import BillingClient, UsageBatcher, llm_usage, sip_usage

    billing = await BillingClient.connect("temporal.internal:7233", namespace="billing")
    decision = await billing.authorize(call_id, account_id, "phone")
    if decision.authorized:
        async with UsageBatcher(billing, call_id) as usage:
            await usage.add(llm_usage("openai/gpt-4o-mini", input_tokens=900, output_tokens=40))
            await usage.add(sip_usage("plivo/in-outbound", seconds=60))
            await usage.hangup("completed")
    status = await billing.status(call_id)

Depends only on `temporalio`.
"""

from osmtalk_billing_client.batcher import UsageBatcher, is_transient
from osmtalk_billing_client.client import BillingClient, check_call_id, usage_events_to_wire
from osmtalk_billing_client.contract import (
    CALL_ID_PATTERN,
    HANGUP_OUTCOMES,
    MAX_EVENTS_PER_SIGNAL,
    TASK_QUEUE,
    AuthorizeResult,
    CallBreakdown,
    CallResult,
    CallState,
    CallStatus,
    Channel,
    Component,
    LateUsageResult,
    Outcome,
    RejectedEvent,
    UsageBatch,
    UsageLine,
    UsageReport,
    call_workflow_id,
)
from osmtalk_billing_client.errors import (
    BillingClientError,
    BillingUnavailable,
    CallEnded,
    CallNotFound,
    InvalidRequest,
    UsageRejected,
)
from osmtalk_billing_client.events import llm_usage, sip_usage, stt_usage, tts_usage

__all__ = [
    "CALL_ID_PATTERN",
    "HANGUP_OUTCOMES",
    "MAX_EVENTS_PER_SIGNAL",
    "TASK_QUEUE",
    "AuthorizeResult",
    "BillingClient",
    "BillingClientError",
    "BillingUnavailable",
    "CallBreakdown",
    "CallEnded",
    "CallNotFound",
    "CallResult",
    "CallState",
    "CallStatus",
    "Channel",
    "Component",
    "InvalidRequest",
    "LateUsageResult",
    "Outcome",
    "RejectedEvent",
    "UsageBatch",
    "UsageBatcher",
    "UsageLine",
    "UsageRejected",
    "UsageReport",
    "call_workflow_id",
    "check_call_id",
    "is_transient",
    "llm_usage",
    "sip_usage",
    "stt_usage",
    "tts_usage",
    "usage_events_to_wire",
]
