"""`CallBillingWorkflow`: one workflow per call (contract §3), id `call_workflow_id(call_id)`.

Lifecycle: authorize (a local activity running the ledger's authorize; the decision is kept and
returned by every `authorize` update) → usage signals (validated against the rate card pinned at
authorization, deduplicated by event_id) → hangup (first wins) or the maximum duration
(`abandoned`) → one finalize activity (capture or void, idempotent in the ledger).

Since `LEDGER_USAGE_PATCH` the ledger keeps the call's usage:
- accepted usage is checkpointed by the `call_checkpoint` local activity at most once a second
  (the first no sooner than a second after authorization, so short calls need none), always
  within about a second of arriving; each checkpoint moves the call's hold to its running cost
  plus the minimum balance. Usage acknowledged more than 2 s ago survives the workflow.
- the ledger's unique (call_id, event_id) dedupes the whole call: no event ids are carried
  across continue-as-new, only this run's set.
- finalize prices what the ledger has plus the events not checkpointed yet, in one transaction.
- usage that arrives while finalizing is charged as a late adjustment before the run ends (later
  usage reaches `CallLateUsageWorkflow` through the client).
- an authorize activity that failed (perhaps after its commit) is voided by the retried
  `call_void` activity; the decision is `billing_unavailable`.
Histories recorded before the patch replay the old shape (the `legacy` branches). A first run
the client started with the call's search attributes is `lean` (`_is_lean`): the patched shape
with fewer history events, and checkpoints that let usage gather up to
`LEAN_CHECKPOINT_GATHER` (1.5 s) from the oldest pending event, so a call reporting every
second checkpoints every other second. Since `SIGNAL_CHECKPOINTS_PATCH` a lean run checkpoints in
the workflow task of the usage signal that finds usage pending for `SIGNAL_GATHER` (0.8 s):
a call reporting every second checkpoints at every other report, in that report's task, and the
timer (still started for the 1.5 s bound) is cancelled instead of firing a workflow task of its
own. A third fewer workflow tasks per call-second; a call that stops reporting is still
checkpointed by the timer. A lean run started with the `billing_shape` memo at 2 or more
(`CALL_SHAPE_MEMO`, which the clients give since) has that shape without the patch's marker and
the TemporalChangeVersion upsert that comes with it.

Names and shapes are `domain.contracts`'. Deterministic: no I/O here, no SQLAlchemy/db/ledger
imports; activities are called by name.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.channels import Channel, Outcome
    from domain.contracts import (
        ACCOUNT_ID_ATTRIBUTE,
        AUTHORIZE_UPDATE,
        CALL_AUTHORIZE_ACTIVITY,
        CALL_CHANNEL_ATTRIBUTE,
        CALL_CHECKPOINT_ACTIVITY,
        CALL_FINALIZE_ACTIVITY,
        CALL_LATE_USAGE_ACTIVITY,
        CALL_OUTCOME_ATTRIBUTE,
        CALL_SHAPE_MEMO,
        CALL_VOID_ACTIVITY,
        CALL_WORKFLOW,
        HANGUP_SIGNAL,
        STATUS_QUERY,
        USAGE_SIGNAL,
        CallState,
    )
    from domain.contracts.call_usage import (
        CallVoid,
        CheckpointedUsage,
        LateUsage,
        LateUsageResult,
        UsageCheckpoint,
        events_to_json,
    )
    from domain.contracts.calls import (
        AuthorizeCallInput,
        AuthorizeRequest,
        AuthorizeResult,
        CallAuthorization,
        CallInput,
        CallResult,
        CallStatus,
        Hangup,
        usage_events_from_wire,
    )
    from domain.ledger_types import (
        REASON_BILLING_UNAVAILABLE,
        AuthorizeDecision,
        FinalizeCallRequest,
        FinalizedCall,
    )
    from domain.rating import Breakdown
    from workflows.call_state import CallWorkflowState, failure_cause

ACCOUNT_ID = SearchAttributeKey.for_keyword(ACCOUNT_ID_ATTRIBUTE)
CALL_CHANNEL = SearchAttributeKey.for_keyword(CALL_CHANNEL_ATTRIBUTE)
CALL_OUTCOME = SearchAttributeKey.for_keyword(CALL_OUTCOME_ATTRIBUTE)

LEDGER_USAGE_PATCH = "ledger-usage"
CHECKPOINT_INTERVAL = timedelta(seconds=1)
# A lean run lets usage gather this long from the oldest pending event before it checkpoints
# (never sooner than CHECKPOINT_INTERVAL after the last one): a call reporting every second
# checkpoints every other second, half the ledger work, and the hold still catches up within
# the contract's 2 s.
LEAN_CHECKPOINT_GATHER = timedelta(seconds=1.5)
# Since this patch a lean run also checkpoints at a usage signal that finds usage pending this
# long (a report a second apart, with room for jitter), in the signal's own workflow task.
SIGNAL_CHECKPOINTS_PATCH = "signal-checkpoints"
SIGNAL_GATHER = timedelta(seconds=0.8)
# The `billing_shape` (CALL_SHAPE_MEMO) from which a run has this patch's shape without its marker.
SIGNAL_CHECKPOINTS_SHAPE = 2
# Until it lands: the ledger posts each once (first finalization wins, events once per id).
UNTIL_IT_LANDS = RetryPolicy(maximum_interval=timedelta(seconds=30))


@workflow.defn(name=CALL_WORKFLOW)
class CallBillingWorkflow(CallWorkflowState):
    @workflow.init
    def __init__(self, input: CallInput) -> None:
        super().__init__(input)
        self._deadline_passed = False
        self._checkpoints = 0  # committed in this run; names the next batch
        self._last_checkpoint_at: datetime | None = None
        self._late_batches = 0
        self._checkpoint_scheduled = False  # waiting for a checkpoint's time, not for usage
        self._pending_since: datetime | None = None  # when the oldest pending event came (lean)
        self._lean = False  # a first run of the history diet's shape (`_is_lean`); set by run()
        self._signal_checkpoints = False  # a lean run since SIGNAL_CHECKPOINTS_PATCH; by run()
        # A carry from a run since the patch: this run is one too, even for signals that are
        # handled before run() starts.
        self._ledgered = bool(input.carry and input.carry.ledgered)

    # --- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CallInput) -> CallResult:
        self._lean = self._is_lean(input)
        if self._lean:
            self._ledgered = True  # the patch's shape, without its marker and its upsert
            # Short-circuit: a run started with the shape memo records no patch marker.
            self._signal_checkpoints = self._started_with_shape(
                SIGNAL_CHECKPOINTS_SHAPE
            ) or workflow.patched(SIGNAL_CHECKPOINTS_PATCH)
        else:
            self._ledgered = workflow.patched(LEDGER_USAGE_PATCH)
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
            if self._ledgered and decision.reason == REASON_BILLING_UNAVAILABLE:
                await self._void(decision.reason)
            return await self._end_refused()
        workflow.set_current_details(
            f"**active** · hold {decision.hold_paisa} paisa"
            f" · rate card v{decision.rate_card_version}"
        )
        if self._ledgered and self._legacy_carry:
            self._book.adopt_legacy_totals()
        for raw in self._pending_usage:
            self._ingest(raw)
        self._pending_usage.clear()
        self._note_pending()

        assert self._deadline is not None
        deadline = datetime.fromisoformat(self._deadline)
        if self._ledgered:
            await self._run_call(input, deadline)
        else:
            await self._run_call_legacy(input, deadline)
        assert self._hangup is not None
        return await self._finalize(self._hangup)

    @staticmethod
    def _is_lean(input: CallInput) -> bool:
        """A first run the client started with AccountId and CallChannel (clients give them
        since the history diet). Such a run records fewer events than the earlier shape:
        no upsert of those attributes, no `ledger-usage` patch marker nor the SDK's
        TemporalChangeVersion upsert that goes with it (it is of the patched shape anyway),
        the deadline timer left uncancelled (see `_run_call`) and no memo (the breakdown is in
        the result). Its checkpoints gather usage (`_checkpoint_due`).

        Deterministic: the start's attributes are in the started event. Earlier first runs were
        started without them, and continued runs (whose started events carry the attributes
        over) keep the earlier shape. Deploy the workers before the clients that give them: a
        run an older worker began with them has the marker and the upsert in its history, which
        this code would not replay."""
        given = workflow.info().typed_search_attributes
        return (
            input.carry is None
            and given.get(ACCOUNT_ID) == input.account_id
            and given.get(CALL_CHANNEL) == input.channel
        )

    @staticmethod
    def _started_with_shape(shape: int) -> bool:
        """The client asked at start for this history shape or a later one (CALL_SHAPE_MEMO).
        Deterministic: the start's memo is in the started event. Deploy the workers before the
        clients that give it: a run an older worker began with it has the patch marker in its
        history, which this code would not replay."""
        try:
            given = workflow.memo_value(CALL_SHAPE_MEMO, 0, type_hint=int)
        except Exception:  # a memo this code cannot read: not a shape it knows
            return False
        return isinstance(given, int) and given >= shape

    async def _run_call(self, input: CallInput, deadline: datetime) -> None:
        """Until hangup or the deadline: checkpoint usage, continue as new when due.

        A lean run leaves the deadline's timer running when the call ends (the run's end drops
        it) instead of cancelling it: one history event less per call. The checkpoint's timer
        is still cancelled: it could fire while the final workflow task runs the finalize, and
        that task would be retried. Runs of the earlier shape replay as recorded, both timers
        cancelled."""
        timer = asyncio.create_task(self._deadline_timer(deadline))
        self._last_checkpoint_at = workflow.now()
        try:
            while self._hangup is None:
                if self._deadline_passed:
                    self._hangup = Hangup(Outcome.ABANDONED, "max_duration", self._deadline)
                    break
                if self._should_continue_as_new():
                    if not self._lean:
                        timer.cancel()
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(self._next_run_input(input))
                due = self._checkpoint_due()
                now = workflow.now()
                if (due is not None and due <= now) or self._gathered(now):
                    await self._checkpoint()
                    continue
                self._checkpoint_scheduled = due is not None
                with contextlib.suppress(TimeoutError):  # a timeout: the checkpoint is due
                    await workflow.wait_condition(
                        self._woken,
                        timeout=due - now if due is not None else None,
                        timeout_summary="usage checkpoint",
                    )
        finally:
            if not timer.done() and not self._lean:
                timer.cancel()

    def _woken(self) -> bool:
        return (
            self._hangup is not None
            or self._deadline_passed
            or self._should_continue_as_new()
            or (not self._checkpoint_scheduled and bool(self._book.pending))
            or self._gathered(workflow.now())
        )

    def _gathered(self, now: datetime) -> bool:
        """A signal-checkpointing run: usage has been pending SIGNAL_GATHER by this task's time
        (a usage signal's task, or any other), so it is checkpointed now, not by the timer."""
        return (
            self._signal_checkpoints
            and self._pending_since is not None
            and bool(self._book.pending)
            and now - self._pending_since >= SIGNAL_GATHER
        )

    async def _deadline_timer(self, deadline: datetime) -> None:
        remaining = deadline - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining, summary="maximum call duration")
        self._deadline_passed = True

    # --- activities --------------------------------------------------------------------------

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
                start_to_close_timeout=timedelta(seconds=5),
                # The orchestrator is waiting (the API gives up after 15 s): answer
                # billing_unavailable before it does rather than hang the call. (Attempts
                # bound it too: the SDK let local activities retry past schedule-to-close.)
                schedule_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2), maximum_attempts=3),
            )
        except (ActivityError, ApplicationError) as exc:
            cause = failure_cause(exc)
            code = REASON_BILLING_UNAVAILABLE
            if isinstance(cause, ApplicationError) and cause.non_retryable and cause.type:
                code = cause.type  # e.g. validation_error, conflict: nothing was committed
            workflow.logger.warning("call %s not authorized: %s", self._input.call_id, code)
            return self._refusal(code)
        return result

    @staticmethod
    def _refusal(reason: str) -> CallAuthorization:
        return CallAuthorization(AuthorizeDecision(False, reason, 0, 0, None))

    async def _void(self, reason: str) -> None:
        """The failed authorize may have committed a hold: void it, however long that takes
        (the decision is already answered)."""
        await workflow.execute_activity(
            CALL_VOID_ACTIVITY,
            CallVoid(self._input.call_id, reason),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=UNTIL_IT_LANDS,
        )

    def _checkpoint_due(self) -> datetime | None:
        if not self._book.pending or self._last_checkpoint_at is None:
            return None
        due = self._last_checkpoint_at + CHECKPOINT_INTERVAL
        if self._lean and self._pending_since is not None:
            due = max(due, self._pending_since + LEAN_CHECKPOINT_GATHER)
        return due

    def _note_pending(self) -> None:
        """Usage may have become pending: remember since when (a lean run's gathering)."""
        if self._book.pending and self._pending_since is None:
            self._pending_since = workflow.now()

    def _batch(self) -> str:
        """The next batch's name. It advances only when a checkpoint lands, so a retry after a
        failure (whose commit may have happened) names its events as its own again."""
        return f"{workflow.info().run_id}:{self._checkpoints + 1}"

    async def _checkpoint(self) -> None:
        events = list(self._book.pending)
        self._last_checkpoint_at = workflow.now()
        try:
            result = await workflow.execute_local_activity(
                CALL_CHECKPOINT_ACTIVITY,
                UsageCheckpoint(self._input.call_id, self._batch(), events_to_json(events)),
                result_type=CheckpointedUsage,
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)),
            )
        except (ActivityError, ApplicationError):
            # The events stay pending: the next checkpoint or the final charge takes them.
            workflow.logger.warning("usage checkpoint of call %s failed", self._input.call_id)
            return
        self._checkpoints += 1
        self._book.confirm_checkpoint(len(events), result)
        # What came during the activity has waited since it started, at most.
        self._pending_since = self._last_checkpoint_at if self._book.pending else None

    async def _end_refused(self) -> CallResult:
        self._state = CallState.REFUSED
        self._outcome = Outcome.REFUSED
        self._ended_at = workflow.now().isoformat()
        workflow.upsert_search_attributes([CALL_OUTCOME.value_set(self._outcome)])
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _finalize(self, hangup: Hangup) -> CallResult:
        self._finalizing = True  # usage from now on is late usage
        self._outcome = hangup.outcome
        self._ended_at = hangup.ended_at or workflow.now().isoformat()
        events = list(self._book.pending)
        request = FinalizeCallRequest(
            call_id=self._input.call_id,
            outcome=hangup.outcome,
            hangup_reason=hangup.reason,
            ended_at=self._ended_at,
            usage=[] if self._ledgered else list(self._book.confirmed.lines),
            usage_event_count=self._book.event_count,
            rejected_event_count=self._rejected_event_count,
            events_json=events_to_json(events) if self._ledgered else None,
            batch=self._batch(),
        )
        self._final = await workflow.execute_local_activity(
            CALL_FINALIZE_ACTIVITY,
            request,
            result_type=FinalizedCall,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=UNTIL_IT_LANDS,
        )
        if self._ledgered:
            self._book.confirm(
                len(events),
                self._final.usage or [],
                self._final.usage_event_count or 0,
                len(self._final.duplicate_event_ids),
            )
        self._state = CallState.FINALIZED
        self._outcome = Outcome(self._final.outcome) if self._final.outcome else hangup.outcome
        workflow.upsert_search_attributes([CALL_OUTCOME.value_set(self._outcome)])
        while True:
            await self._charge_late_usage()
            breakdown = self._breakdown()
            if not self._lean:  # the breakdown is in the result; a lean run skips the memo
                workflow.upsert_memo({"breakdown": breakdown, "outcome": self._outcome})
            workflow.set_current_details(self._summary(breakdown))
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._late_usage:
                return self._result()

    async def _charge_late_usage(self) -> None:
        """Usage that arrived while finalizing: one adjustment per batch (contract §3)."""
        while self._late_usage and self._final is not None:
            batch = list(self._late_usage)
            self._late_batches += 1
            name = f"{workflow.info().run_id}:late:{self._late_batches}"
            try:
                result = await workflow.execute_local_activity(
                    CALL_LATE_USAGE_ACTIVITY,
                    LateUsage(self._input.call_id, name, batch),
                    result_type=LateUsageResult,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=UNTIL_IT_LANDS,
                )
            except (ActivityError, ApplicationError) as exc:
                cause = failure_cause(exc)
                code = cause.type if isinstance(cause, ApplicationError) else None
                for raw in batch:
                    event_id = raw.get("event_id")
                    self._reject(
                        event_id if isinstance(event_id, str) else None,
                        code or REASON_BILLING_UNAVAILABLE,
                        str(cause),
                    )
            else:
                self._book.duplicate_event_count += result.duplicate_event_count
                self._final = replace(
                    self._final,
                    breakdown=Breakdown(
                        **asdict(result.breakdown), margin_rate=self._final.breakdown.margin_rate
                    ),
                    usage=list(result.usage),
                    usage_event_count=result.usage_event_count,
                )
            del self._late_usage[: len(batch)]

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
        self._note_pending()

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
