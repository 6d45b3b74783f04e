"""The orchestrator and support over HTTP for the chaos tests: requests retried through an
outage (5xx, timeouts, refused connections) with the same body and headers, bounded by a
deadline; polling with deadlines instead of fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.load import CallPlan, CallSample

RETRYABLE = {502, 503, 504}
HTTP_TIMEOUT = 30.0
DEADLINE = 150.0  # per call / refund, generous: the machine is shared


async def post_until_done(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    *,
    deadline: float,
    headers: dict[str, str] | None = None,
    counter: list[int] | None = None,
) -> httpx.Response:
    """POST, retried (same body, same headers) on 5xx, timeouts and refused connections."""
    while True:
        try:
            response = await http.post(url, json=body, headers=headers)
            if response.status_code not in RETRYABLE:
                return response
        except httpx.TransportError:
            pass
        if counter is not None:
            counter.append(1)
        if time.monotonic() > deadline:
            raise TimeoutError(f"POST {url} still failing at the deadline")
        await asyncio.sleep(0.3)


async def poll_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.3
) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {timeout:.0f}s")
        await asyncio.sleep(every)


async def drive_call_http(http: httpx.AsyncClient, plan: CallPlan, talk_pause: float) -> CallSample:
    """The orchestrator over HTTP: POST /v1/calls, two usage posts, hangup, then poll the call
    until it is finalized."""
    sample = CallSample(call_id=plan.call_id, ok=False)
    started = time.monotonic()
    deadline = started + DEADLINE
    retries: list[int] = []
    try:
        answer = await post_until_done(
            http,
            "/v1/calls",
            {"call_id": plan.call_id, "account_id": plan.account_id, "channel": plan.channel},
            deadline=deadline,
            counter=retries,
        )
        assert answer.status_code == 200, answer.text
        sample.authorized = bool(answer.json()["authorized"])
        half = len(plan.events) // 2
        for index, chunk in enumerate((plan.events[:half], plan.events[half:])):
            if index:
                await asyncio.sleep(talk_pause)
            answer = await post_until_done(
                http,
                f"/v1/calls/{plan.call_id}/usage",
                {"events": chunk},
                deadline=deadline,
                counter=retries,
            )
            assert answer.status_code == 202, answer.text
        answer = await post_until_done(
            http,
            f"/v1/calls/{plan.call_id}/hangup",
            {"outcome": plan.outcome},
            deadline=deadline,
            counter=retries,
        )
        assert answer.status_code == 202, answer.text

        async def finalized() -> bool:
            try:
                got = await http.get(f"/v1/calls/{plan.call_id}")
            except httpx.TransportError:
                return False
            return got.status_code == 200 and got.json().get("status") == "finalized"

        await poll_until(finalized, max(deadline - time.monotonic(), 1.0), plan.call_id)
        sample.ok = True
    except (AssertionError, TimeoutError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        sample.retries = len(retries)
        sample.finished_at = time.monotonic()
        sample.total_s = sample.finished_at - started
    return sample
