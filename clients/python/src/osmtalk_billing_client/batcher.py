"""`UsageBatcher`: one call's usage events, sent as batched `usage` signals, as the contract asks
(a workflow takes at most 10,000 signals, and every signal is a round trip)::

    async with UsageBatcher(billing, call_id) as usage:       # flushes every second
        await usage.add(llm_usage("openai/gpt-4o-mini", input_tokens=900, output_tokens=40))
        ...
        await usage.hangup("completed")                       # flushes, then hangs up

Events go out every `interval` seconds, as soon as `max_events` are waiting, before the hangup
and on close. A send that fails for a transient reason (Temporal unavailable, a timeout) is
retried with the same events and event ids, and the call counts an event_id once, so a retry
after a lost reply never bills twice. Events a send could not deliver stay queued for the next
flush; refusals that no retry can change (the call ended or does not exist) are raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import temporalio.service

from osmtalk_billing_client.client import BillingClient, check_call_id, usage_events_to_wire
from osmtalk_billing_client.contract import MAX_EVENTS_PER_SIGNAL, UsageReport
from osmtalk_billing_client.errors import BillingClientError, InvalidRequest

log = logging.getLogger("osmtalk_billing_client")

_TRANSIENT_RPC = frozenset(
    {
        temporalio.service.RPCStatusCode.UNAVAILABLE,
        temporalio.service.RPCStatusCode.DEADLINE_EXCEEDED,
        temporalio.service.RPCStatusCode.RESOURCE_EXHAUSTED,
        temporalio.service.RPCStatusCode.ABORTED,
        temporalio.service.RPCStatusCode.INTERNAL,
        temporalio.service.RPCStatusCode.UNKNOWN,
        temporalio.service.RPCStatusCode.CANCELLED,
    }
)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the request may or may not have arrived, and resending is safe."""
    if isinstance(exc, temporalio.service.RPCError):
        return exc.status in _TRANSIENT_RPC
    return isinstance(exc, TimeoutError | ConnectionError)


class UsageBatcher:
    def __init__(
        self,
        client: BillingClient,
        call_id: str,
        *,
        interval: float = 1.0,
        max_events: int = 100,
        attempts: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        if not 1 <= max_events <= MAX_EVENTS_PER_SIGNAL:
            raise InvalidRequest(f"max_events must be 1 to {MAX_EVENTS_PER_SIGNAL}")
        self.client = client
        self.call_id = check_call_id(call_id)
        self.interval = interval
        self.max_events = max_events
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._pending: list[dict[str, Any]] = []
        self._send_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._failure: BillingClientError | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Events added but not yet accepted by the workflow."""
        return len(self._pending)

    def start(self) -> None:
        """Start the periodic flush (done by `async with` and by the first `add`)."""
        if self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def add(self, event: UsageReport | Mapping[str, Any]) -> str:
        """Queue one event (checked now, sent with the next flush); returns its event_id."""
        self._raise_failure()
        if self._closed:
            raise InvalidRequest(f"the usage batcher of call {self.call_id} is closed")
        (wire,) = usage_events_to_wire([event])
        self._pending.append(wire)
        self.start()
        if len(self._pending) >= self.max_events:
            await self.flush()
        return str(wire["event_id"])

    async def flush(self) -> int:
        """Send every queued event now, in signals of at most `max_events`; returns how many
        were accepted. Raises what made a send fail (the events stay queued)."""
        self._raise_failure()
        sent = 0
        async with self._send_lock:
            while self._pending:
                chunk = self._pending[: self.max_events]

                async def send(events: list[dict[str, Any]] = chunk) -> None:
                    await self.client.report_usage(self.call_id, events)

                await self._retrying(send)
                del self._pending[: len(chunk)]
                sent += len(chunk)
        return sent

    async def hangup(
        self, outcome: str, reason: str | None = None, ended_at: str | None = None
    ) -> None:
        """Flush what is queued, then end the call (the hangup is retried like usage: the first
        hangup wins, repeats are harmless). The batcher is closed afterwards."""
        await self._stop_timer()
        await self.flush()
        self._closed = True
        await self._retrying(lambda: self.client.hangup(self.call_id, outcome, reason, ended_at))

    async def close(self) -> None:
        """Stop the periodic flush and send what is still queued."""
        await self._stop_timer()
        self._closed = True
        if self._pending:
            await self.flush()

    async def __aenter__(self) -> UsageBatcher:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _retrying(self, send: Callable[[], Awaitable[None]]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await send()
                return
            except Exception as exc:
                if not is_transient(exc) or attempt == self.attempts:
                    raise
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                log.warning(
                    "call %s: send failed (%s), retry %d in %.1fs",
                    self.call_id,
                    exc,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self._pending:
                continue
            try:
                await self.flush()
            except BillingClientError as exc:  # no retry changes it: surface it to the caller
                self._failure = exc
                log.error("call %s: usage refused: %s", self.call_id, exc.message)
                return
            except Exception as exc:  # still queued: the next tick tries again
                log.warning("call %s: usage not sent yet: %s", self.call_id, exc)

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
