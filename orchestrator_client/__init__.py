"""Typed Python client for the call orchestrator (contract §3).

`authorize` is Update-with-Start with a fixed update id, so repeating it for a `call_id` returns
the decision already taken; `report_usage` and `hangup` are signals; `status` is the query.
Usage for a call whose workflow has ended is late usage: `report_usage` sends it to the call's
`CallLateUsageWorkflow` (Update-with-Start), which answers with the adjustment or `CallEnded`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import temporalio.client
import temporalio.common
import temporalio.exceptions
import temporalio.service

from domain.channels import HANGUP_OUTCOMES, Channel, Component, Outcome
from domain.contracts import (
    ACCOUNT_ID_ATTRIBUTE,
    AUTHORIZE_UPDATE,
    CALL_CHANNEL_ATTRIBUTE,
    CALL_ID_PATTERN,
    CALL_LATE_USAGE_WORKFLOW,
    CALL_SHAPE,
    CALL_SHAPE_MEMO,
    CALL_WORKFLOW,
    HANGUP_SIGNAL,
    LATE_USAGE_UPDATE,
    MAX_EVENTS_PER_SIGNAL,
    STATUS_QUERY,
    TASK_QUEUE,
    USAGE_SIGNAL,
    authorize_update_id,
    call_workflow_id,
    late_usage_workflow_id,
)
from domain.contracts.call_usage import LateUsageResult, LateUsageStart
from domain.contracts.calls import (
    AuthorizeRequest,
    AuthorizeResult,
    CallResult,
    CallStart,
    CallStatus,
    Hangup,
    UsageBatch,
    UsageReport,
)

_CALL_ID = re.compile(CALL_ID_PATTERN)
CALL_ID_RULE = "call_id: 1 to 200 of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit"
_CHANNELS = frozenset(Channel)
_COMPONENTS = frozenset(Component)
# What `report_usage` takes: one event (a UsageReport or its JSON object), a list of them, or a
# batch (a UsageBatch or `{"events": [...]}`).
UsageEvent = UsageReport | Mapping[str, Any]
UsageEvents = UsageEvent | UsageBatch | Sequence[UsageEvent]


# Given at every call's start: the workflow's current history shape (domain.contracts).
CALL_START_MEMO: Mapping[str, Any] = {CALL_SHAPE_MEMO: CALL_SHAPE}


def call_search_attributes(
    account_id: str, channel: str
) -> temporalio.common.TypedSearchAttributes:
    """What the ops view searches calls by, given at start (the workflow upserts them only when
    a start lacks them)."""
    return temporalio.common.TypedSearchAttributes(
        [
            temporalio.common.SearchAttributePair(
                temporalio.common.SearchAttributeKey.for_keyword(ACCOUNT_ID_ATTRIBUTE), account_id
            ),
            temporalio.common.SearchAttributePair(
                temporalio.common.SearchAttributeKey.for_keyword(CALL_CHANNEL_ATTRIBUTE), channel
            ),
        ]
    )


class BillingClientError(Exception):
    """Base class; `code` is the stable problem+json code an HTTP layer can return."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class CallNotFound(BillingClientError):
    code = "not_found"


class CallEnded(BillingClientError):
    """Usage reported for a call that is already finalized: it can no longer be billed."""

    code = "call_ended"


class InvalidRequest(BillingClientError):
    code = "validation_error"


class BillingUnavailable(BillingClientError):
    """Billing could not record it right now (database or worker down); retrying is safe."""

    code = "billing_unavailable"


class UsageRejected(InvalidRequest):
    """A usage report refused client-side (shape); pricing checks happen in the workflow and
    show up in `status().rejected_events`."""


def _check_call_id(call_id: str) -> None:
    if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
        raise InvalidRequest(CALL_ID_RULE)


def _check_iso_time(value: str | None, field: str) -> None:
    if value is None:
        return
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{field} must be an ISO 8601 time") from None


def validate_usage_shape(events: UsageEvents) -> list[dict[str, Any]]:
    """The client-side checks: one event, a list of them or a batch (`UsageBatch` or
    `{"events": [...]}`), each an object with an event_id and a known component. Returns the
    events as the signal carries them."""
    batch: object
    if isinstance(events, UsageBatch):
        batch = list(events.events)
    elif isinstance(events, UsageReport):
        batch = [events]
    elif isinstance(events, Mapping):
        batch = events.get("events") if "events" in events else [events]
    elif isinstance(events, Sequence) and not isinstance(events, str | bytes):
        batch = list(events)
    else:
        batch = events
    if not isinstance(batch, list) or not batch:
        raise UsageRejected("usage needs at least one event")
    if len(batch) > MAX_EVENTS_PER_SIGNAL:
        raise UsageRejected(f"at most {MAX_EVENTS_PER_SIGNAL} events per report")
    wire: list[dict[str, Any]] = []
    for index, item in enumerate(batch):
        event = item.to_wire() if isinstance(item, UsageReport) else item
        if not isinstance(event, Mapping):
            raise UsageRejected(f"events[{index}] must be an object")
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
            raise UsageRejected(f"events[{index}].event_id must be a non-empty string")
        component = event.get("component")
        if not isinstance(component, str) or component not in _COMPONENTS:
            raise UsageRejected(
                f"events[{index}].component {component!r} is unknown", code="invalid_component"
            )
        wire.append(dict(event))
    return wire


def _is_not_found(exc: BaseException) -> bool:
    return (
        isinstance(exc, temporalio.service.RPCError)
        and exc.status == temporalio.service.RPCStatusCode.NOT_FOUND
    )


def _late_usage_error(call_id: str, cause: BaseException | None) -> BillingClientError:
    """The typed error of a failed `late_usage` update, by the ledger's code."""
    if not isinstance(cause, temporalio.exceptions.ApplicationError):
        return BillingUnavailable(f"late usage of call {call_id} was not recorded: {cause}")
    code = cause.type or "validation_error"
    if code == "call_ended":
        return CallEnded(cause.message)
    if code == "not_found":
        return CallNotFound(cause.message)
    if code == BillingUnavailable.code:
        return BillingUnavailable(cause.message)
    return UsageRejected(cause.message, code=code)


class BillingClient:
    def __init__(self, client: temporalio.client.Client, task_queue: str = TASK_QUEUE) -> None:
        self.client = client
        self.task_queue = task_queue

    @classmethod
    async def connect(
        cls, address: str, namespace: str = "default", task_queue: str = TASK_QUEUE
    ) -> BillingClient:
        return cls(await temporalio.client.Client.connect(address, namespace=namespace), task_queue)

    def _handle(self, call_id: str) -> temporalio.client.WorkflowHandle[Any, CallResult]:
        _check_call_id(call_id)
        return self.client.get_workflow_handle(call_workflow_id(call_id), result_type=CallResult)

    async def authorize(
        self, call_id: str, account_id: str, channel: str, started_at: str | None = None
    ) -> AuthorizeResult:
        """Start the call's workflow and authorize it in one round trip; idempotent."""
        _check_call_id(call_id)
        if not isinstance(account_id, str) or not account_id:
            raise InvalidRequest("account_id is required")
        if not isinstance(channel, str) or channel not in _CHANNELS:
            raise InvalidRequest(f"channel {channel!r} is unknown", code="invalid_channel")
        _check_iso_time(started_at, "started_at")
        start: temporalio.client.WithStartWorkflowOperation[Any, CallResult] = (
            temporalio.client.WithStartWorkflowOperation(
                CALL_WORKFLOW,
                CallStart(call_id, account_id, channel, started_at),
                id=call_workflow_id(call_id),
                task_queue=self.task_queue,
                result_type=CallResult,
                id_conflict_policy=temporalio.common.WorkflowIDConflictPolicy.USE_EXISTING,
                # A finished call is never started again: its decision is read from its result.
                id_reuse_policy=temporalio.common.WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{channel} call {call_id} · account {account_id}",
                # At start rather than upserted by the workflow: one history event less.
                search_attributes=call_search_attributes(account_id, channel),
                # The workflow's current shape, without the patch markers of earlier ones.
                memo=CALL_START_MEMO,
            )
        )
        try:
            decision: AuthorizeResult = await self.client.execute_update_with_start_workflow(
                AUTHORIZE_UPDATE,
                AuthorizeRequest(call_id, account_id, channel),
                start_workflow_operation=start,
                id=authorize_update_id(account_id, channel),
                result_type=AuthorizeResult,
            )
            return decision
        except temporalio.exceptions.WorkflowAlreadyStartedError:
            finished = await self.result(call_id)
            if finished.account_id != account_id or finished.channel != channel:
                raise InvalidRequest(
                    f"call {call_id} was authorized for another account or channel",
                    code="conflict",
                ) from None
            return finished.authorization
        except temporalio.client.WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, temporalio.exceptions.ApplicationError):
                raise InvalidRequest(cause.message, code=cause.type or "conflict") from exc
            raise

    async def report_usage(self, call_id: str, events: UsageEvents) -> LateUsageResult | None:
        """Send one usage signal (more than one event is sent as `{"events": [...]}`).

        For a call whose workflow has ended it is late usage (contract §3): answered at once
        with the adjustment posted (a `LateUsageResult`), `CallEnded` after the window, or
        `UsageRejected` (nothing recorded) when an event does not fit the call."""
        batch = validate_usage_shape(events)
        payload: dict[str, Any] = batch[0] if len(batch) == 1 else {"events": batch}
        handle = self._handle(call_id)
        try:
            await handle.signal(USAGE_SIGNAL, payload)
        except temporalio.service.RPCError as exc:
            if not _is_not_found(exc):
                raise
            try:
                await self._raise_missing_or_ended(call_id)
            except CallEnded:
                return await self._report_late(call_id, batch)
            raise
        return None

    def _late_usage_start(
        self, call_id: str
    ) -> temporalio.client.WithStartWorkflowOperation[Any, None]:
        return temporalio.client.WithStartWorkflowOperation(
            CALL_LATE_USAGE_WORKFLOW,
            LateUsageStart(call_id),
            id=late_usage_workflow_id(call_id),
            task_queue=self.task_queue,
            id_conflict_policy=temporalio.common.WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=temporalio.common.WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"late usage of call {call_id}",
        )

    async def _report_late(self, call_id: str, batch: list[dict[str, Any]]) -> LateUsageResult:
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                result: LateUsageResult = await self.client.execute_update_with_start_workflow(
                    LATE_USAGE_UPDATE,
                    {"events": batch},
                    start_workflow_operation=self._late_usage_start(call_id),
                    result_type=LateUsageResult,
                )
                return result
            except temporalio.client.WorkflowUpdateFailedError as exc:
                raise _late_usage_error(call_id, exc.cause) from exc
            except temporalio.service.RPCError as exc:
                # The idle workflow ended as the update arrived: the next try starts a new one.
                if not _is_not_found(exc) or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    async def hangup(
        self,
        call_id: str,
        outcome: str,
        reason: str | None = None,
        ended_at: str | None = None,
    ) -> None:
        """End the call. Repeating it, even after the call is finalized, is harmless."""
        if not isinstance(outcome, str) or outcome not in HANGUP_OUTCOMES:
            raise InvalidRequest(
                f"outcome {outcome!r} is not one of {', '.join(sorted(HANGUP_OUTCOMES))}",
                code="invalid_outcome",
            )
        _check_iso_time(ended_at, "ended_at")
        handle = self._handle(call_id)
        try:
            await handle.signal(HANGUP_SIGNAL, Hangup(Outcome(outcome), reason, ended_at))
        except temporalio.service.RPCError as exc:
            if not _is_not_found(exc):
                raise
            try:
                await self._raise_missing_or_ended(call_id)
            except CallEnded:
                return  # the first hangup already won

    async def status(self, call_id: str) -> CallStatus:
        handle = self._handle(call_id)
        try:
            status: CallStatus = await handle.query(STATUS_QUERY, result_type=CallStatus)
            return status
        except temporalio.service.RPCError as exc:
            if _is_not_found(exc):
                raise CallNotFound(f"call {call_id} not found") from exc
            raise

    async def result(self, call_id: str) -> CallResult:
        """Wait for the call's final result: the status plus `authorization` and `charged`."""
        handle = self._handle(call_id)
        try:
            return await handle.result()
        except temporalio.service.RPCError as exc:
            if _is_not_found(exc):
                raise CallNotFound(f"call {call_id} not found") from exc
            raise

    async def _raise_missing_or_ended(self, call_id: str) -> None:
        try:
            await self._handle(call_id).describe()
        except temporalio.service.RPCError as exc:
            if _is_not_found(exc):
                raise CallNotFound(f"call {call_id} not found") from exc
            raise
        raise CallEnded(f"call {call_id} has already ended")


__all__ = [
    "AuthorizeResult",
    "BillingClient",
    "BillingClientError",
    "BillingUnavailable",
    "CallEnded",
    "CallNotFound",
    "CallResult",
    "CallStatus",
    "InvalidRequest",
    "LateUsageResult",
    "UsageBatch",
    "UsageRejected",
    "UsageReport",
    "call_workflow_id",
]
