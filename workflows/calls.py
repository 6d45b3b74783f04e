"""`CallBillingWorkflow`: one workflow per call (contract §3), id `call_workflow_id(call_id)`.

Lifecycle: authorize (a local activity running the ledger's authorize; the decision is kept and
returned by every `authorize` update) → usage signals (validated against the rate card pinned at
authorization, deduplicated by event_id) → hangup (first wins) or the maximum duration
(`abandoned`) → one finalize activity (capture or void, idempotent in the ledger).

Names and shapes are `domain.contracts`'. Deterministic: no I/O here, no SQLAlchemy/db/ledger
imports; activities are called by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.channels import CHANNEL_COMPONENTS, COMPONENT_ORDER, Channel, Outcome
    from domain.contracts import (
        ACCOUNT_ID_ATTRIBUTE,
        AUTHORIZE_UPDATE,
        CALL_AUTHORIZE_ACTIVITY,
        CALL_CHANNEL_ATTRIBUTE,
        CALL_FINALIZE_ACTIVITY,
        CALL_OUTCOME_ATTRIBUTE,
        CALL_WORKFLOW,
        HANGUP_SIGNAL,
        STATUS_QUERY,
        USAGE_SIGNAL,
        CallState,
    )
    from domain.contracts.calls import (
        AuthorizeCallInput,
        AuthorizeRequest,
        AuthorizeResult,
        CallAuthorization,
        CallBreakdown,
        CallCarry,
        CallInput,
        CallResult,
        CallStatus,
        Hangup,
        RejectedEvent,
        usage_events_from_wire,
    )
    from domain.ledger_types import AuthorizeDecision, FinalizeCallRequest, FinalizedCall
    from domain.rating import (
        Breakdown,
        RatingError,
        UsageTotals,
        price_usage,
        validate_usage_event,
    )

ACCOUNT_ID = SearchAttributeKey.for_keyword(ACCOUNT_ID_ATTRIBUTE)
CALL_CHANNEL = SearchAttributeKey.for_keyword(CALL_CHANNEL_ATTRIBUTE)
CALL_OUTCOME = SearchAttributeKey.for_keyword(CALL_OUTCOME_ATTRIBUTE)

# Continue as new well before Temporal's limits (10,000 signals, 51,200 events / 50 MB of
# history): after this many signals or raw usage events in one run, or when the server suggests.
MAX_SIGNALS_PER_RUN = 1000
MAX_EVENTS_PER_RUN = 10_000
# Dedupe rule across runs: within a run every event_id is remembered; a new run inherits the most
# recent ids, at most CARRIED_EVENT_IDS of them and CARRIED_EVENT_ID_CHARS characters in all.
# A retried report repeats recent ids, so this catches retries while the carried state (and the
# continue-as-new payload) stays bounded however long the call lasts.
CARRIED_EVENT_IDS = 5000
CARRIED_EVENT_ID_CHARS = 100_000
# The status keeps the first rejected events in detail (and counts all of them).
MAX_REJECTED_DETAILS = 100


@workflow.defn(name=CALL_WORKFLOW)
class CallBillingWorkflow:
    @workflow.init
    def __init__(self, input: CallInput) -> None:
        self._input = input
        carry = input.carry
        self._authorization: CallAuthorization | None = carry.authorization if carry else None
        self._started_at: str | None = carry.started_at if carry else input.started_at
        self._deadline: str | None = carry.deadline if carry else None
        self._usage = carry.usage if carry else UsageTotals()
        self._usage_event_count = carry.usage_event_count if carry else 0
        self._duplicate_event_count = carry.duplicate_event_count if carry else 0
        self._rejected_event_count = carry.rejected_event_count if carry else 0
        self._rejected_events: list[RejectedEvent] = list(carry.rejected_events) if carry else []
        self._recent_event_ids: list[str] = list(carry.recent_event_ids) if carry else []
        self._seen: set[str] = set(self._recent_event_ids)
        self._hangup: Hangup | None = carry.hangup if carry else None
        self._runs = carry.runs if carry else 1
        self._pending_usage: list[object] = []  # reports that arrived before the decision
        self._signals_in_run = 0
        self._events_in_run = 0
        self._finalizing = False
        self._state = CallState.ACTIVE
        self._outcome: Outcome | None = None
        self._ended_at: str | None = None
        self._final: FinalizedCall | None = None

    # --- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CallInput) -> CallResult:
        workflow.upsert_search_attributes(
            [ACCOUNT_ID.value_set(input.account_id), CALL_CHANNEL.value_set(input.channel)]
        )
        if self._authorization is None:
            self._authorization = await self._authorize()
            self._started_at = self._started_at or workflow.now().isoformat()
            max_duration = timedelta(seconds=self._authorization.max_duration_seconds)
            self._deadline = (workflow.now() + max_duration).isoformat()
        decision = self._authorization.decision
        if not decision.authorized:
            return await self._end_refused()
        workflow.set_current_details(
            f"**active** · hold {decision.hold_paisa} paisa"
            f" · rate card v{decision.rate_card_version}"
        )
        for raw in self._pending_usage:
            self._ingest(raw)
        self._pending_usage.clear()

        assert self._deadline is not None
        deadline = datetime.fromisoformat(self._deadline)
        while self._hangup is None:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                self._hangup = Hangup(Outcome.ABANDONED, "max_duration", self._deadline)
                break
            try:
                await workflow.wait_condition(
                    lambda: self._hangup is not None or self._should_continue_as_new(),
                    timeout=remaining,
                    timeout_summary="maximum call duration",
                )
            except TimeoutError:
                continue  # the loop notices the deadline and abandons the call
            if self._hangup is None:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    CallInput(
                        call_id=input.call_id,
                        account_id=input.account_id,
                        channel=input.channel,
                        started_at=input.started_at,
                        carry=self._carry(),
                    )
                )
        return await self._finalize(self._hangup)

    async def _authorize(self) -> CallAuthorization:
        request = AuthorizeCallInput(
            call_id=self._input.call_id,
            account_id=self._input.account_id,
            channel=self._input.channel,
            started_at=self._input.started_at,
        )
        if self._input.channel not in {c.value for c in Channel}:
            return self._refusal("invalid_channel")
        try:
            result: CallAuthorization = await workflow.execute_local_activity(
                CALL_AUTHORIZE_ACTIVITY,
                request,
                result_type=CallAuthorization,
                start_to_close_timeout=timedelta(seconds=10),
                # The orchestrator is waiting: give up after a minute rather than hang the call.
                schedule_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
            )
        except ActivityError as exc:
            cause = exc.cause
            code = "billing_unavailable"
            if isinstance(cause, ApplicationError) and cause.non_retryable and cause.type:
                code = cause.type  # e.g. validation_error, conflict
            workflow.logger.warning("call %s not authorized: %s", self._input.call_id, code)
            return self._refusal(code)
        return result

    @staticmethod
    def _refusal(reason: str) -> CallAuthorization:
        return CallAuthorization(AuthorizeDecision(False, reason, 0, 0, None))

    async def _end_refused(self) -> CallResult:
        self._state = CallState.REFUSED
        self._outcome = Outcome.REFUSED
        self._ended_at = workflow.now().isoformat()
        workflow.upsert_search_attributes([CALL_OUTCOME.value_set(self._outcome)])
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _finalize(self, hangup: Hangup) -> CallResult:
        self._finalizing = True  # usage from now on is too late to be billed
        self._outcome = hangup.outcome
        self._ended_at = hangup.ended_at or workflow.now().isoformat()
        request = FinalizeCallRequest(
            call_id=self._input.call_id,
            outcome=hangup.outcome,
            hangup_reason=hangup.reason,
            ended_at=self._ended_at,
            usage=list(self._usage.lines),
            usage_event_count=self._usage_event_count,
            rejected_event_count=self._rejected_event_count,
        )
        # Retried until it lands: the ledger posts it once (first finalization wins).
        self._final = await workflow.execute_local_activity(
            CALL_FINALIZE_ACTIVITY,
            request,
            result_type=FinalizedCall,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
        self._state = CallState.FINALIZED
        self._outcome = Outcome(self._final.outcome) if self._final.outcome else hangup.outcome
        breakdown = self._breakdown()
        workflow.upsert_search_attributes([CALL_OUTCOME.value_set(self._outcome)])
        workflow.upsert_memo({"breakdown": breakdown, "outcome": self._outcome})
        workflow.set_current_details(self._summary(breakdown))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    # --- continue-as-new ---------------------------------------------------------------------

    def _should_continue_as_new(self) -> bool:
        return (
            self._signals_in_run >= MAX_SIGNALS_PER_RUN
            or self._events_in_run >= MAX_EVENTS_PER_RUN
            or workflow.info().is_continue_as_new_suggested()
        )

    def _carry(self) -> CallCarry:
        assert self._authorization is not None
        assert self._started_at is not None and self._deadline is not None
        kept: list[str] = []
        chars = 0
        for event_id in reversed(self._recent_event_ids[-CARRIED_EVENT_IDS:]):
            chars += len(event_id)
            if chars > CARRIED_EVENT_ID_CHARS:
                break
            kept.append(event_id)
        kept.reverse()
        return CallCarry(
            authorization=self._authorization,
            started_at=self._started_at,
            deadline=self._deadline,
            usage=self._usage,
            usage_event_count=self._usage_event_count,
            duplicate_event_count=self._duplicate_event_count,
            rejected_event_count=self._rejected_event_count,
            rejected_events=self._rejected_events,
            recent_event_ids=kept,
            hangup=self._hangup,
            runs=self._runs + 1,
        )

    # --- update, signals, query --------------------------------------------------------------

    @workflow.update(name=AUTHORIZE_UPDATE)
    async def authorize(self, request: AuthorizeRequest | None = None) -> AuthorizeResult:
        """The kept decision: the first call runs it, every repeat returns it unchanged."""
        await workflow.wait_condition(lambda: self._authorization is not None)
        assert self._authorization is not None
        return AuthorizeResult.of(self._authorization.decision)

    @authorize.validator
    def _validate_authorize(self, request: AuthorizeRequest | None = None) -> None:
        if request is None:
            return
        for name in ("call_id", "account_id", "channel"):
            given = getattr(request, name)
            if given is not None and given != getattr(self._input, name):
                raise ApplicationError(
                    f"call {self._input.call_id} was started with another {name}",
                    type="conflict",
                )

    @workflow.signal(name=USAGE_SIGNAL)
    def usage(self, payload: Any) -> None:
        """A `UsageReport` or a `UsageBatch`, read from the raw JSON (see domain.contracts)."""
        self._signals_in_run += 1
        events = usage_events_from_wire(payload)
        if events is None:
            self._reject(None, "validation_error", "events must be a list")
            return
        self._events_in_run += len(events)
        for raw in events:
            self._ingest(raw)

    @workflow.signal(name=HANGUP_SIGNAL)
    def hangup(self, payload: Any) -> None:
        """A `Hangup`, read from the raw JSON (see domain.contracts)."""
        self._signals_in_run += 1
        if self._hangup is not None or self._finalizing or self._state == CallState.REFUSED:
            return  # the first hangup wins; repeats are harmless
        hangup = Hangup.from_wire(payload)
        if hangup is None:
            workflow.logger.warning("ignoring a hangup without a valid outcome")
            return
        if hangup.ended_at is None:
            hangup = Hangup(hangup.outcome, hangup.reason, workflow.now().isoformat())
        self._hangup = hangup

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CallStatus:
        return self._status()

    # --- usage -------------------------------------------------------------------------------

    def _ingest(self, raw: object) -> None:
        if self._authorization is None:
            self._pending_usage.append(raw)
            return
        decision = self._authorization.decision
        if not decision.authorized or decision.rate_card is None:
            return  # a refused call is never charged
        event_id = raw.get("event_id") if isinstance(raw, Mapping) else None
        if not isinstance(event_id, str):
            event_id = None
        if event_id is not None and event_id in self._seen:
            self._duplicate_event_count += 1
            return
        if self._finalizing:
            self._reject(event_id, "call_ended", "usage arrived after the call was finalized")
            return
        if event_id is not None:
            self._remember(event_id)
        if not isinstance(raw, Mapping):
            self._reject(None, "validation_error", "a usage event must be an object")
            return
        try:
            event = validate_usage_event(raw, self._input.channel, decision.rate_card)
        except RatingError as exc:
            self._reject(event_id, exc.code, exc.message)
            return
        self._usage.add(event)
        self._usage_event_count += 1

    def _remember(self, event_id: str) -> None:
        self._seen.add(event_id)
        self._recent_event_ids.append(event_id)
        # Only the tail is ever carried; trim now and then so the list stays bounded in a run.
        if len(self._recent_event_ids) > 4 * CARRIED_EVENT_IDS:
            self._recent_event_ids = self._recent_event_ids[-CARRIED_EVENT_IDS:]

    def _reject(self, event_id: str | None, code: str, message: str) -> None:
        self._rejected_event_count += 1
        if len(self._rejected_events) < MAX_REJECTED_DETAILS:
            self._rejected_events.append(RejectedEvent(event_id, code, message))

    # --- views -------------------------------------------------------------------------------

    def _breakdown(self) -> CallBreakdown:
        decision = self._authorization.decision if self._authorization else None
        if self._final is not None:
            breakdown = self._final.breakdown
        elif decision is None or decision.rate_card is None:
            breakdown = Breakdown.zero()
        else:
            margin = Decimal(decision.margin_rate)
            breakdown = price_usage(self._usage.lines, decision.rate_card, margin)
        return CallBreakdown.of(breakdown)

    def _summary(self, breakdown: CallBreakdown) -> str:
        channel_components = CHANNEL_COMPONENTS[Channel(self._input.channel)]
        components = " + ".join(
            f"{c.value} {getattr(breakdown, f'{c.value}_paisa')}"
            for c in COMPONENT_ORDER
            if c in channel_components
        )
        return (
            f"**{self._outcome}**: {components} = {breakdown.provider_total_paisa} "
            f"+ margin {breakdown.margin_paisa} = **{breakdown.total_paisa} paisa**"
        )

    def _status(self) -> CallStatus:
        decision = self._authorization.decision if self._authorization else None
        return CallStatus(
            call_id=self._input.call_id,
            account_id=self._input.account_id,
            channel=self._input.channel,
            state=self._state,
            outcome=self._outcome,
            hangup_reason=self._hangup.reason if self._hangup else None,
            started_at=self._started_at,
            ended_at=self._ended_at,
            usage=list(self._usage.lines),
            usage_event_count=self._usage_event_count,
            duplicate_event_count=self._duplicate_event_count,
            rejected_event_count=self._rejected_event_count,
            rejected_events=list(self._rejected_events),
            breakdown=self._breakdown(),
            rate_card_version=decision.rate_card_version if decision else None,
            margin_rate=decision.margin_rate if decision else None,
            authorized=decision.authorized if decision else None,
            runs=self._runs,
        )

    def _result(self) -> CallResult:
        assert self._authorization is not None
        return CallResult.of(
            self._status(),
            AuthorizeResult.of(self._authorization.decision),
            charged=bool(self._final and self._final.charged),
            transaction_id=self._final.transaction_id if self._final else None,
        )
