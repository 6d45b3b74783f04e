"""`CallBillingWorkflow`'s state and what is derived from it: usage intake (validation,
dedupe, rejections), the continue-as-new carry, and the `status`/result views. The workflow
class (`workflows.calls`) adds the run, the activities and the handlers on top of this.

Deterministic, no I/O (it runs inside the workflow)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.channels import CHANNEL_COMPONENTS, COMPONENT_ORDER, Channel, Outcome
    from domain.contracts import CallState
    from domain.contracts.call_usage import events_to_json
    from domain.contracts.calls import (
        AuthorizeResult,
        CallAuthorization,
        CallBreakdown,
        CallCarry,
        CallInput,
        CallResult,
        CallStatus,
        Hangup,
        RejectedEvent,
    )
    from domain.ledger_types import FinalizedCall
    from domain.rating import Breakdown, RatingError, price_usage, validate_usage_event
    from workflows.call_usage import UsageBook

# Continue as new well before Temporal's limits (10,000 signals, 51,200 events / 50 MB of
# history): after this many signals or raw usage events in one run, or when the server suggests.
MAX_SIGNALS_PER_RUN = 1000
MAX_EVENTS_PER_RUN = 10_000
# Runs from before the ledger kept usage carried their most recent event ids to the next run
# (at most this many, and this many characters); runs since rely on the ledger's dedupe.
CARRIED_EVENT_IDS = 5000
CARRIED_EVENT_ID_CHARS = 100_000
# The status keeps the first rejected events in detail (and counts all of them).
MAX_REJECTED_DETAILS = 100


def failure_cause(exc: ActivityError | ApplicationError) -> BaseException:
    """What a local activity failed with: an `ActivityError` wraps the activity's error, but once
    its attempts are exhausted the SDK raises that error itself."""
    if isinstance(exc, ActivityError):
        return exc.cause or exc
    return exc


class CallWorkflowState:
    def __init__(self, input: CallInput) -> None:
        self._input = input
        carry = input.carry
        self._authorization: CallAuthorization | None = carry.authorization if carry else None
        self._started_at: str | None = carry.started_at if carry else input.started_at
        self._deadline: str | None = carry.deadline if carry else None
        self._book = UsageBook.from_carry(carry)
        self._legacy_carry = carry is not None and not carry.ledgered
        self._rejected_event_count = carry.rejected_event_count if carry else 0
        self._rejected_events: list[RejectedEvent] = list(carry.rejected_events) if carry else []
        self._recent_event_ids: list[str] = list(carry.recent_event_ids) if carry else []
        self._hangup: Hangup | None = carry.hangup if carry else None
        self._runs = carry.runs if carry else 1
        self._pending_usage: list[object] = []  # reports that arrived before the decision
        self._late_usage: list[dict[str, Any]] = []  # valid, arrived while finalizing
        self._ledgered = False  # set by run(): usage goes through the ledger (see calls.py)
        self._signals_in_run = 0
        self._events_in_run = 0
        self._finalizing = False
        self._state = CallState.ACTIVE
        self._outcome: Outcome | None = None
        self._ended_at: str | None = None
        self._final: FinalizedCall | None = None

    # --- usage intake ------------------------------------------------------------------------

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
        if event_id is not None and event_id in self._book.seen:
            self._book.duplicate_event_count += 1
            return
        if self._finalizing and not self._ledgered:
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
        if self._finalizing:
            self._late_usage.append(dict(raw))  # charged as an adjustment once finalized
        elif self._ledgered:
            self._book.add_pending(event)
        else:
            self._book.confirmed.add(event)
            self._book.confirmed_count += 1

    def _remember(self, event_id: str) -> None:
        self._book.seen.add(event_id)
        if self._ledgered:
            return
        self._recent_event_ids.append(event_id)
        # Only the tail is ever carried; trim now and then so the list stays bounded in a run.
        if len(self._recent_event_ids) > 4 * CARRIED_EVENT_IDS:
            self._recent_event_ids = self._recent_event_ids[-CARRIED_EVENT_IDS:]

    def _reject(self, event_id: str | None, code: str, message: str) -> None:
        self._rejected_event_count += 1
        if len(self._rejected_events) < MAX_REJECTED_DETAILS:
            self._rejected_events.append(RejectedEvent(event_id, code, message))

    # --- continue-as-new ---------------------------------------------------------------------

    def _should_continue_as_new(self) -> bool:
        return (
            self._signals_in_run >= MAX_SIGNALS_PER_RUN
            or self._events_in_run >= MAX_EVENTS_PER_RUN
            or workflow.info().is_continue_as_new_suggested()
        )

    async def _run_call_legacy(self, input: CallInput, deadline: datetime) -> None:
        """The loop of runs recorded before LEDGER_USAGE_PATCH (replay only)."""
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
                workflow.continue_as_new(self._next_run_input(input))

    def _next_run_input(self, input: CallInput) -> CallInput:
        return CallInput(
            call_id=input.call_id,
            account_id=input.account_id,
            channel=input.channel,
            started_at=input.started_at,
            carry=self._carry(),
        )

    def _carry(self) -> CallCarry:
        assert self._authorization is not None
        assert self._started_at is not None and self._deadline is not None
        recent: list[str] = []
        if not self._ledgered:
            chars = 0
            for event_id in reversed(self._recent_event_ids[-CARRIED_EVENT_IDS:]):
                chars += len(event_id)
                if chars > CARRIED_EVENT_ID_CHARS:
                    break
                recent.append(event_id)
            recent.reverse()
        return CallCarry(
            authorization=self._authorization,
            started_at=self._started_at,
            deadline=self._deadline,
            usage=self._book.confirmed,
            usage_event_count=self._book.confirmed_count,
            duplicate_event_count=self._book.duplicate_event_count,
            rejected_event_count=self._rejected_event_count,
            rejected_events=self._rejected_events,
            recent_event_ids=recent,
            hangup=self._hangup,
            runs=self._runs + 1,
            ledgered=self._ledgered,
            pending_events_json=events_to_json(self._book.pending),
        )

    # --- views -------------------------------------------------------------------------------

    def _breakdown(self) -> CallBreakdown:
        decision = self._authorization.decision if self._authorization else None
        if self._final is not None:
            breakdown = self._final.breakdown
        elif decision is None or decision.rate_card is None:
            breakdown = Breakdown.zero()
        else:
            margin = Decimal(decision.margin_rate)
            breakdown = price_usage(self._book.lines(), decision.rate_card, margin)
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
        final = self._final
        ledger_view = final is not None and final.usage is not None
        return CallStatus(
            call_id=self._input.call_id,
            account_id=self._input.account_id,
            channel=self._input.channel,
            state=self._state,
            outcome=self._outcome,
            hangup_reason=self._hangup.reason if self._hangup else None,
            started_at=self._started_at,
            ended_at=self._ended_at,
            usage=list(final.usage or []) if final and ledger_view else self._book.lines(),
            usage_event_count=(
                final.usage_event_count or 0 if final and ledger_view else self._book.event_count
            ),
            duplicate_event_count=self._book.duplicate_event_count,
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
