"""Typed Python client for the call orchestrator (contract §3).

`authorize` is Update-with-Start with a fixed update id, so repeating it for a `call_id` returns
the decision already taken; `report_usage` and `hangup` are signals; `status` is the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import temporalio.client
import temporalio.common
import temporalio.exceptions
import temporalio.service

TASK_QUEUE = "billing"
WORKFLOW_TYPE = "CallBillingWorkflow"
AUTHORIZE_UPDATE = "authorize"


def authorize_update_id(account_id: str, channel: str) -> str:
    """Fixed for a call's (account, channel): the server deduplicates a retried authorize by it,
    while a request naming another account or channel still reaches the validator (conflict)."""
    return f"authorize:{channel}:{account_id}"


CHANNELS = frozenset({"phone", "web", "whatsapp", "chat"})
COMPONENTS = frozenset({"llm", "stt", "tts", "sip"})
HANGUP_OUTCOMES = frozenset({"completed", "voicemail", "failed", "no_answer", "busy", "rejected"})
# One signal carries at most this many events: keeps a payload well under Temporal's 2 MB.
MAX_EVENTS_PER_SIGNAL = 2000


def workflow_id(call_id: str) -> str:
    return f"call-{call_id}"


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


class UsageRejected(InvalidRequest):
    """A usage report refused client-side (shape); pricing checks happen in the workflow and
    show up in `status()["rejected_events"]`."""


@dataclass
class AuthorizeResult:
    authorized: bool
    reason: str | None
    hold_paisa: int
    available_paisa: int
    rate_card_version: int | None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AuthorizeResult:
        return cls(
            authorized=bool(raw["authorized"]),
            reason=raw.get("reason"),
            hold_paisa=int(raw.get("hold_paisa") or 0),
            available_paisa=int(raw.get("available_paisa") or 0),
            rate_card_version=raw.get("rate_card_version"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "authorized": self.authorized,
            "reason": self.reason,
            "hold_paisa": self.hold_paisa,
            "available_paisa": self.available_paisa,
            "rate_card_version": self.rate_card_version,
        }


def _check_call_id(call_id: str) -> None:
    if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > 200:
        raise InvalidRequest("call_id must be 1 to 200 characters")


def _check_iso_time(value: str | None, field: str) -> None:
    if value is None:
        return
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{field} must be an ISO 8601 time") from None


def validate_usage_shape(events: Mapping[str, Any] | list[Any]) -> list[dict[str, Any]]:
    """The client-side checks: a list (or `{"events": [...]}` or one event) of objects with an
    event_id and a known component. Returns the events as a list."""
    if isinstance(events, Mapping):
        batch = events.get("events") if "events" in events else [events]
    else:
        batch = events
    if not isinstance(batch, list) or not batch:
        raise UsageRejected("usage needs at least one event")
    if len(batch) > MAX_EVENTS_PER_SIGNAL:
        raise UsageRejected(f"at most {MAX_EVENTS_PER_SIGNAL} events per report")
    for index, event in enumerate(batch):
        if not isinstance(event, Mapping):
            raise UsageRejected(f"events[{index}] must be an object")
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
            raise UsageRejected(f"events[{index}].event_id must be a non-empty string")
        if event.get("component") not in COMPONENTS:
            raise UsageRejected(
                f"events[{index}].component {event.get('component')!r} is unknown",
                code="invalid_component",
            )
    return [dict(event) for event in batch]


def _is_not_found(exc: BaseException) -> bool:
    return (
        isinstance(exc, temporalio.service.RPCError)
        and exc.status == temporalio.service.RPCStatusCode.NOT_FOUND
    )


class BillingClient:
    def __init__(self, client: temporalio.client.Client, task_queue: str = TASK_QUEUE) -> None:
        self.client = client
        self.task_queue = task_queue

    @classmethod
    async def connect(
        cls, address: str, namespace: str = "default", task_queue: str = TASK_QUEUE
    ) -> BillingClient:
        return cls(await temporalio.client.Client.connect(address, namespace=namespace), task_queue)

    def _handle(self, call_id: str) -> temporalio.client.WorkflowHandle[Any, Any]:
        _check_call_id(call_id)
        return self.client.get_workflow_handle(workflow_id(call_id), result_type=dict)

    async def authorize(
        self, call_id: str, account_id: str, channel: str, started_at: str | None = None
    ) -> AuthorizeResult:
        """Start the call's workflow and authorize it in one round trip; idempotent."""
        _check_call_id(call_id)
        if not isinstance(account_id, str) or not account_id:
            raise InvalidRequest("account_id is required")
        if channel not in CHANNELS:
            raise InvalidRequest(f"channel {channel!r} is unknown", code="invalid_channel")
        _check_iso_time(started_at, "started_at")
        call_input: dict[str, Any] = {
            "call_id": call_id,
            "account_id": account_id,
            "channel": channel,
            "started_at": started_at,
        }
        start: temporalio.client.WithStartWorkflowOperation[Any, Any] = (
            temporalio.client.WithStartWorkflowOperation(
                WORKFLOW_TYPE,
                call_input,
                id=workflow_id(call_id),
                task_queue=self.task_queue,
                id_conflict_policy=temporalio.common.WorkflowIDConflictPolicy.USE_EXISTING,
                # A finished call is never started again: its decision is read from its result.
                id_reuse_policy=temporalio.common.WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{channel} call {call_id} · account {account_id}",
            )
        )
        try:
            decision = await self.client.execute_update_with_start_workflow(
                AUTHORIZE_UPDATE,
                {"call_id": call_id, "account_id": account_id, "channel": channel},
                start_workflow_operation=start,
                id=authorize_update_id(account_id, channel),
                result_type=dict,
            )
        except temporalio.exceptions.WorkflowAlreadyStartedError:
            finished = await self.result(call_id)
            if finished.get("account_id") != account_id or finished.get("channel") != channel:
                raise InvalidRequest(
                    f"call {call_id} was authorized for another account or channel",
                    code="conflict",
                ) from None
            return AuthorizeResult.from_dict(finished["authorization"])
        except temporalio.client.WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, temporalio.exceptions.ApplicationError):
                raise InvalidRequest(cause.message, code=cause.type or "conflict") from exc
            raise
        return AuthorizeResult.from_dict(decision)

    async def report_usage(
        self, call_id: str, events: dict[str, Any] | list[dict[str, Any]]
    ) -> None:
        """Send one usage signal (a batch is sent as `{"events": [...]}`)."""
        batch = validate_usage_shape(events)
        payload: dict[str, Any] = batch[0] if len(batch) == 1 else {"events": batch}
        handle = self._handle(call_id)
        try:
            await handle.signal("usage", payload)
        except temporalio.service.RPCError as exc:
            if _is_not_found(exc):
                await self._raise_missing_or_ended(call_id)
            raise

    async def hangup(
        self,
        call_id: str,
        outcome: str,
        reason: str | None = None,
        ended_at: str | None = None,
    ) -> None:
        """End the call. Repeating it, even after the call is finalized, is harmless."""
        if outcome not in HANGUP_OUTCOMES:
            raise InvalidRequest(
                f"outcome {outcome!r} is not one of {', '.join(sorted(HANGUP_OUTCOMES))}",
                code="invalid_outcome",
            )
        _check_iso_time(ended_at, "ended_at")
        handle = self._handle(call_id)
        try:
            await handle.signal(
                "hangup", {"outcome": outcome, "reason": reason, "ended_at": ended_at}
            )
        except temporalio.service.RPCError as exc:
            if not _is_not_found(exc):
                raise
            try:
                await self._raise_missing_or_ended(call_id)
            except CallEnded:
                return  # the first hangup already won

    async def status(self, call_id: str) -> dict[str, Any]:
        handle = self._handle(call_id)
        try:
            result: dict[str, Any] = await handle.query("status", result_type=dict)
        except temporalio.service.RPCError as exc:
            if _is_not_found(exc):
                raise CallNotFound(f"call {call_id} not found") from exc
            raise
        return result

    async def result(self, call_id: str) -> dict[str, Any]:
        """Wait for the call's final result: the status plus `authorization` and `charged`."""
        handle = self._handle(call_id)
        try:
            result: dict[str, Any] = await handle.result()
        except temporalio.service.RPCError as exc:
            if _is_not_found(exc):
                raise CallNotFound(f"call {call_id} not found") from exc
            raise
        return result

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
    "CallEnded",
    "CallNotFound",
    "InvalidRequest",
    "UsageRejected",
    "workflow_id",
]
