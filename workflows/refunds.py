"""`RefundWorkflow` (`refund_workflow_id(refund_id)`), started by support through the API.

Input: one JSON object `{"refund_id", "account_id", "amount_paisa"}` (`amount_paisa` may be
omitted/null: all refundable paid balance). The API starts it *first* (Update-with-Start of the
update `decision`, the refund id derived from the request's `Idempotency-Key`), so the debit is
the workflow's and a retried request finds the same workflow: never a second debit. Steps, each
an activity:
1. `refund_start`: `ledger.refunds.start_refund` (validation + pending debit of the paid balance;
   idempotent on refund_id). A refusal (more than the refundable amount, nothing refundable,
   unknown account) ends the workflow with status `failed`, `refusal` set to its code, and
   nothing changed. Either way the refund is *decided*: the update `decision` answers.
   The debit's transaction also plans the refund's parts (the payments it goes back to, newest
   first, and a payout for the rest): `RefundRecord.parts`.
2. Each pending part: `refund_part_send` (idempotent per part at the gateway; 5xx/timeouts retry
   with the same key). A part still pending there is settled by the signal `refund_part_event`
   (the webhook's `refund.processed` / `refund.failed`, routed by the refund's notes) through
   `refund_part_settle`, or, when no signal comes for `PART_POLL`, by asking the gateway
   (`refund_part_settle` without a status). A failed part is credited back in that step.
3. `refund_finish`: `completed` (some part processed; failed parts credited back and shown),
   `failed` (every part failed: all the money is back).
4. `refund_email`: refund completed / refund failed email (dedupe key per refund and outcome).
Histories recorded before parts (no `refund-parts` patch marker) run the old step 2/3: one
`refund_gateway` call, then `refund_complete` or `refund_fail`.
Steps 1 and 3 hand a low-balance crossing they recorded to the account workflow.
Update `decision` (`RefundDecisionRequest`, its amount must be the input's) → `RefundResult` once
decided. Query `status` → `RefundResult` with `status` `pending`, `completed` or `failed`. Names
and shapes are domain.contracts'.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.retry_policies import GATEWAY_RETRY, LEDGER_RETRY

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        REFUND_COMPLETE_ACTIVITY,
        REFUND_DECISION_UPDATE,
        REFUND_EMAIL_ACTIVITY,
        REFUND_FAIL_ACTIVITY,
        REFUND_FINISH_ACTIVITY,
        REFUND_GATEWAY_ACTIVITY,
        REFUND_PART_EVENT_SIGNAL,
        REFUND_PART_SEND_ACTIVITY,
        REFUND_PART_SETTLE_ACTIVITY,
        REFUND_PARTS_PATCH,
        REFUND_START_ACTIVITY,
        REFUND_WORKFLOW,
        STATUS_QUERY,
        EmailOutcome,
        RefundStatus,
    )
    from domain.contracts.refunds import (
        GatewayOutcome,
        GatewayRequest,
        RefundCompletion,
        RefundDecisionRequest,
        RefundFailure,
        RefundInput,
        RefundPartEvent,
        RefundPartRecord,
        RefundPartRequest,
        RefundPartSettlement,
        RefundRecord,
        RefundResult,
    )
    from domain.refund_parts import RefundPartStatus

# No webhook for a pending part this long: ask the gateway (Razorpay settles refunds in days).
PART_POLL = timedelta(seconds=30)


@workflow.defn(name=REFUND_WORKFLOW)
class RefundWorkflow:
    @workflow.init
    def __init__(self, input: RefundInput) -> None:
        self._input = input
        self._decided = False
        self._part_events: list[RefundPartEvent] = []
        self._status = RefundResult(
            id=input.refund_id,
            account_id=input.account_id,
            amount_paisa=input.amount_paisa,
            status=RefundStatus.PENDING,
        )

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> RefundResult:
        return self._status

    @workflow.update(name=REFUND_DECISION_UPDATE)
    async def decision(self, request: RefundDecisionRequest) -> RefundResult:
        """The refund once debited (pending, or already further) or refused."""
        await workflow.wait_condition(lambda: self._decided)
        return self._status

    @decision.validator
    def _check_decision(self, request: RefundDecisionRequest) -> None:
        if request.amount_paisa != self._input.amount_paisa:
            raise ApplicationError(
                f"refund {self._input.refund_id} was asked for another amount", type="conflict"
            )

    @workflow.signal(name=REFUND_PART_EVENT_SIGNAL)
    def part_event(self, event: RefundPartEvent) -> None:
        self._part_events.append(event)

    def _apply(self, record: RefundRecord) -> None:
        self._status.amount_paisa = record.amount_paisa
        self._status.status = record.status
        self._status.failure_reason = record.failure_reason
        self._status.gateway_reference = record.gateway_reference
        if record.parts:
            self._status.parts = list(record.parts)

    def _apply_part(self, part: RefundPartRecord) -> None:
        self._status.parts = [part if p.part_no == part.part_no else p for p in self._status.parts]

    def _pending_parts(self) -> list[RefundPartRecord]:
        return [p for p in self._status.parts if p.status == RefundPartStatus.PENDING]

    async def _settle(self, settlement: RefundPartSettlement) -> None:
        part = await workflow.execute_activity(
            REFUND_PART_SETTLE_ACTIVITY,
            settlement,
            result_type=RefundPartRecord,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=GATEWAY_RETRY,
        )
        self._apply_part(part)

    async def _refund_parts(self, record: RefundRecord) -> RefundRecord:
        """Send every part, wait until each is settled, then finish the refund."""
        refund_id = record.refund_id
        for part in record.parts:
            if part.status == RefundPartStatus.PENDING and part.gateway_reference is None:
                sent = await workflow.execute_activity(
                    REFUND_PART_SEND_ACTIVITY,
                    RefundPartRequest(refund_id, part.part_no),
                    result_type=RefundPartRecord,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=GATEWAY_RETRY,
                )
                self._apply_part(sent)
        while self._pending_parts() or self._part_events:
            try:
                await workflow.wait_condition(lambda: bool(self._part_events), timeout=PART_POLL)
            except TimeoutError:
                for part in self._pending_parts():
                    await self._settle(RefundPartSettlement(refund_id, part.part_no))
                continue
            events, self._part_events = self._part_events, []
            known = {p.part_no for p in self._status.parts}
            for event in events:
                if event.part_no in known:
                    await self._settle(
                        RefundPartSettlement(
                            refund_id,
                            event.part_no,
                            event.status,
                            event.gateway_reference,
                            event.reason,
                            event.event_row_id,
                        )
                    )
        finished: RefundRecord = await workflow.execute_activity(
            REFUND_FINISH_ACTIVITY,
            refund_id,
            result_type=RefundRecord,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LEDGER_RETRY,
        )
        return finished

    @workflow.run
    async def run(self, input: RefundInput) -> RefundResult:
        try:
            record = await workflow.execute_activity(
                REFUND_START_ACTIVITY,
                input,
                result_type=RefundRecord,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LEDGER_RETRY,
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                # Refused before any money moved.
                self._status.status = RefundStatus.FAILED
                self._status.failure_reason = f"{cause.type}: {cause.message}"
                self._status.refusal = cause.type
                self._decided = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._status
            raise
        self._apply(record)
        self._decided = True
        if record.status == RefundStatus.PENDING and workflow.patched(REFUND_PARTS_PATCH):
            record = await self._refund_parts(record)
            self._apply(record)
        elif record.status == RefundStatus.PENDING:
            outcome = await workflow.execute_activity(
                REFUND_GATEWAY_ACTIVITY,
                GatewayRequest(record.refund_id, record.account_id, record.amount_paisa),
                result_type=GatewayOutcome,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=GATEWAY_RETRY,
            )
            if outcome.succeeded:
                record = await workflow.execute_activity(
                    REFUND_COMPLETE_ACTIVITY,
                    RefundCompletion(record.refund_id, outcome.reference),
                    result_type=RefundRecord,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=LEDGER_RETRY,
                )
            else:
                record = await workflow.execute_activity(
                    REFUND_FAIL_ACTIVITY,
                    RefundFailure(record.refund_id, outcome.reason or "refused by the gateway"),
                    result_type=RefundRecord,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=LEDGER_RETRY,
                )
            self._apply(record)
        try:
            self._status.email = await workflow.execute_activity(
                REFUND_EMAIL_ACTIVITY,
                record.refund_id,
                result_type=EmailOutcome,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(hours=6),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=5),
                ),
            )
        except ActivityError as exc:
            self._status.email = EmailOutcome.NOT_SENT
            workflow.logger.warning("refund email for %s not sent: %s", record.refund_id, exc)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status
