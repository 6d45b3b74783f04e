"""`RefundWorkflow` (`refund-<refund_id>`), started by support through the API.

Input: one JSON object `{"refund_id", "account_id", "amount_paisa"}` (`amount_paisa` may be
omitted/null when started directly: all refundable paid balance). Steps, each an activity:
1. `refund_start`: `ledger.refunds.start_refund` (validation + pending debit of the paid balance;
   idempotent on refund_id, so a no-op when the API already ran it). A refusal (more than the
   refundable amount, nothing refundable, unknown account) ends the workflow with status `failed`
   and nothing changed.
2. `refund_gateway`: `PaymentGateway.refund` (idempotent on refund_id); transient errors retry.
3. `refund_complete` or, on a permanent gateway refusal, `refund_fail` (reverses the debit).
4. `refund_email`: refund completed / refund failed email (dedupe key per refund and outcome).
Steps 1 and 3 report the new balance through `notify_balance_changed`.
Query `status` → `RefundStatus` with `status` `pending`, `completed` or `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

WORKFLOW_TYPE = "RefundWorkflow"
REFUND_START = "refund_start"
REFUND_GATEWAY = "refund_gateway"
REFUND_COMPLETE = "refund_complete"
REFUND_FAIL = "refund_fail"
REFUND_EMAIL = "refund_email"

PENDING = "pending"
COMPLETED = "completed"
FAILED = "failed"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund-{refund_id}"


@dataclass
class RefundInput:
    refund_id: str
    account_id: str
    amount_paisa: int | None = None


@dataclass
class RefundRecord:
    """The refund row as the ledger has it."""

    refund_id: str
    account_id: str
    amount_paisa: int
    status: str
    failure_reason: str | None = None
    gateway_reference: str | None = None


@dataclass
class GatewayRequest:
    refund_id: str
    account_id: str
    amount_paisa: int


@dataclass
class GatewayOutcome:
    succeeded: bool
    reference: str | None = None
    reason: str | None = None


@dataclass
class RefundCompletion:
    refund_id: str
    gateway_reference: str | None


@dataclass
class RefundFailure:
    refund_id: str
    reason: str


@dataclass
class RefundStatus:
    id: str
    account_id: str
    amount_paisa: int | None
    status: str
    failure_reason: str | None = None
    gateway_reference: str | None = None
    email: str | None = None  # "sent", "duplicate", "not_sent"


_LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)


@workflow.defn(name=WORKFLOW_TYPE)
class RefundWorkflow:
    @workflow.init
    def __init__(self, input: RefundInput) -> None:
        self._status = RefundStatus(
            id=input.refund_id,
            account_id=input.account_id,
            amount_paisa=input.amount_paisa,
            status=PENDING,
        )

    @workflow.query(name="status")
    def status(self) -> RefundStatus:
        return self._status

    def _apply(self, record: RefundRecord) -> None:
        self._status.amount_paisa = record.amount_paisa
        self._status.status = record.status
        self._status.failure_reason = record.failure_reason
        self._status.gateway_reference = record.gateway_reference

    @workflow.run
    async def run(self, input: RefundInput) -> RefundStatus:
        try:
            record = await workflow.execute_activity(
                REFUND_START,
                input,
                result_type=RefundRecord,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_LEDGER_RETRY,
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                # Refused before any money moved.
                self._status.status = FAILED
                self._status.failure_reason = f"{cause.type}: {cause.message}"
                return self._status
            raise
        self._apply(record)
        if record.status == PENDING:
            outcome = await workflow.execute_activity(
                REFUND_GATEWAY,
                GatewayRequest(record.refund_id, record.account_id, record.amount_paisa),
                result_type=GatewayOutcome,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=60),
                ),
            )
            if outcome.succeeded:
                record = await workflow.execute_activity(
                    REFUND_COMPLETE,
                    RefundCompletion(record.refund_id, outcome.reference),
                    result_type=RefundRecord,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=_LEDGER_RETRY,
                )
            else:
                record = await workflow.execute_activity(
                    REFUND_FAIL,
                    RefundFailure(record.refund_id, outcome.reason or "refused by the gateway"),
                    result_type=RefundRecord,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=_LEDGER_RETRY,
                )
            self._apply(record)
        try:
            self._status.email = await workflow.execute_activity(
                REFUND_EMAIL,
                record.refund_id,
                result_type=str,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(hours=6),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=5),
                ),
            )
        except ActivityError as exc:
            self._status.email = "not_sent"
            workflow.logger.warning("refund email for %s not sent: %s", record.refund_id, exc)
        return self._status
