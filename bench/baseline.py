"""The baseline: a workflow of the same shape as CallBillingWorkflow that does no billing work.

Same workflow type name, same update/signals/query, so the very same `BillingClient` drives it —
only the task queue differs. Like the billed workflow, the run authorizes with a local activity
(here a no-op) while the `authorize` update waits for the decision; `usage` dedupes events by
event_id, the first `hangup` wins, and the run ends with a no-op finalize local activity. No
ledger, no rate card, no search attributes, no balance notification. Its worker is tuned as the
billing worker is (`worker.main.worker_tuning`: the unsandboxed runner, two activation threads,
the same task polls), so the two differ only in what their workflows do; until 2026-12-01 it ran
the SDK's defaults, sandboxed, and the ratios measured against it flattered billing.

A second queue, `bench-baseline-notify`, runs the same workflow but its finalize activity also
does what the billed finalize does after the ledger commit: a signal-with-start of a per-account
workflow (`account-…`, a stand-in for AccountWorkflow that only counts signals). Comparing the
three splits the billing overhead into "balance notification" and "ledger work". The billed
workflow's throughput divided by this one's is the billing overhead.

A third queue, `bench-baseline-ledger`, is the ledger floor: the ledger writes any billing of a
call must commit, and nothing else (`LedgerFloorCallWorkflow`). Its local activities run
`bench.raw_ledger`'s hand-written transactions on an async pool the size of the billing
worker's: the call's authorize (its hold), a usage checkpoint (the events and the raised hold) at
a report that finds usage pending as long as the billed workflow lets it gather, and the capture
(the charge). No rate card in the history, no timers, no search attributes: what the billed
workflow costs beyond it is billing's own overhead, and its rate ÷ the baseline's is about the
most any billing that writes the ledger, one transaction a write, could reach on this machine.

Run its worker with `python -m bench.baseline --address 127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

if TYPE_CHECKING:
    from db.async_pool import AsyncPool

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        AUTHORIZE_UPDATE,
        BALANCE_CHANGED_SIGNAL,
        CALL_WORKFLOW,
        HANGUP_SIGNAL,
        STATUS_QUERY,
        USAGE_SIGNAL,
        CallState,
    )
    from domain.contracts.calls import (
        AuthorizeResult,
        CallBreakdown,
        CallResult,
        CallStatus,
        Hangup,
    )
    from domain.rating import Breakdown
    from workflows.calls import SIGNAL_GATHER  # the billed workflow's signal checkpoint

BASELINE_TASK_QUEUE = "bench-baseline"
NOTIFY_TASK_QUEUE = "bench-baseline-notify"
LEDGER_TASK_QUEUE = "bench-baseline-ledger"
ACCOUNT_SIGNALS_PER_RUN = 1000  # as AccountWorkflow: continue as new after this many signals


@activity.defn(name="bench_noop_authorize")
async def noop_authorize(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "authorized": True,
        "reason": None,
        "hold_paisa": 0,
        "available_paisa": 0,
        "rate_card_version": 1,
    }


@activity.defn(name="bench_noop_finalize")
async def noop_finalize(request: dict[str, Any]) -> dict[str, Any]:
    return {"call_id": request["call_id"], "charged": False}


class NotifyingFinalize:
    """The finalize of the notify variant: one signal-with-start per call, like
    adapters.balance_events.notify_balance_changed after a committed charge."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name="bench_noop_finalize")
    async def finalize(self, request: dict[str, Any]) -> dict[str, Any]:
        account_id = request["account_id"]
        await self.client.start_workflow(
            "BenchAccountWorkflow",
            {"account_id": account_id},
            id=f"bench-account-{account_id}",
            task_queue=self.task_queue,
            start_signal=BALANCE_CHANGED_SIGNAL,
            start_signal_args=[{"account_id": account_id, "call_id": request["call_id"]}],
        )
        return {"call_id": request["call_id"], "charged": False}


class RawLedgerActivities:
    """The ledger floor's authorize and finalize: a call's hold, then its charge (the typical
    phone call's price), each one hand-written transaction (`bench.raw_ledger`)."""

    def __init__(self, pool: AsyncPool, hold_paisa: int) -> None:
        from bench.ledger_cases import call_price

        self.pool = pool
        self.hold_paisa = hold_paisa
        self.price, totals = call_price()
        self.lines = [line.__dict__ for line in totals.lines]

    # Registered under the no-op activities' names: the baseline workflow the floor inherits
    # calls them by those names.
    @activity.defn(name="bench_noop_authorize")
    async def authorize(self, request: dict[str, Any]) -> dict[str, Any]:
        from bench import raw_ledger

        async with self.pool.connection() as conn:
            await raw_ledger.call_authorize(
                conn, request["account_id"], request["call_id"], self.hold_paisa
            )
        return {
            "authorized": True,
            "reason": None,
            "hold_paisa": self.hold_paisa,
            "available_paisa": 0,
            "rate_card_version": 1,
        }

    @activity.defn(name="bench_raw_checkpoint")
    async def checkpoint(self, request: dict[str, Any]) -> None:
        from bench import raw_ledger

        async with self.pool.connection() as conn:
            await raw_ledger.call_checkpoint(
                conn, request["call_id"], f"floor:{request['n']}", request["events"]
            )

    @activity.defn(name="bench_noop_finalize")
    async def finalize(self, request: dict[str, Any]) -> dict[str, Any]:
        from bench import raw_ledger

        async with self.pool.connection() as conn:
            await raw_ledger.call_capture(conn, request["call_id"], self.price, self.lines)
        return {"call_id": request["call_id"], "charged": True}


@workflow.defn(name="BenchAccountWorkflow")
class BenchAccountWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal(name=BALANCE_CHANGED_SIGNAL)
    def balance_changed(self, snapshot: dict[str, Any]) -> None:
        self._signals += 1

    @workflow.run
    async def run(self, input: dict[str, Any]) -> None:
        await workflow.wait_condition(lambda: self._signals >= ACCOUNT_SIGNALS_PER_RUN)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(input)


@workflow.defn(name=CALL_WORKFLOW)
class BaselineCallWorkflow:
    def __init__(self) -> None:
        self._decision: dict[str, Any] | None = None
        self._events: dict[str, dict[str, Any]] = {}
        self._hangup: dict[str, Any] | None = None
        self._call: dict[str, Any] = {}

    @workflow.run
    async def run(self, call_input: dict[str, Any]) -> CallResult:
        # The billed workflow's order: authorize (local activity) in the run, the update waits
        # for the decision; after hangup one finalize local activity; then the result.
        await self._authorize(call_input)
        await workflow.wait_condition(lambda: self._hangup is not None)
        return await self._finish()

    async def _authorize(self, call_input: dict[str, Any]) -> None:
        self._call = call_input
        self._decision = await workflow.execute_local_activity(
            noop_authorize, call_input, start_to_close_timeout=timedelta(seconds=10)
        )

    async def _finish(self) -> CallResult:
        await workflow.execute_local_activity(
            noop_finalize,
            {
                "call_id": self._call["call_id"],
                "account_id": self._call["account_id"],
                "events": len(self._events),
            },
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._decision is not None
        return CallResult.of(
            self._status(),
            AuthorizeResult(**self._decision),
            charged=False,
            transaction_id=None,
        )

    @workflow.update(name=AUTHORIZE_UPDATE)
    async def authorize(self, request: dict[str, Any] | None = None) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self._decision is not None)
        assert self._decision is not None
        return self._decision

    @workflow.signal(name=USAGE_SIGNAL)
    def usage(self, payload: dict[str, Any]) -> None:
        events = payload.get("events") if "events" in payload else [payload]
        for event in events or []:
            self._events.setdefault(str(event.get("event_id")), event)

    @workflow.signal(name=HANGUP_SIGNAL)
    def hangup(self, payload: dict[str, Any]) -> None:
        if self._hangup is None:
            self._hangup = payload

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CallStatus:
        return self._status()

    def _status(self) -> CallStatus:
        """The billed workflow's shape, with nothing billed."""
        hangup = Hangup.from_wire(self._hangup)
        return CallStatus(
            call_id=self._call.get("call_id", ""),
            account_id=self._call.get("account_id", ""),
            channel=self._call.get("channel", ""),
            state=CallState.ACTIVE if self._hangup is None else CallState.FINALIZED,
            outcome=hangup.outcome if hangup else None,
            hangup_reason=hangup.reason if hangup else None,
            started_at=None,
            ended_at=None,
            usage=[],
            usage_event_count=len(self._events),
            duplicate_event_count=0,
            rejected_event_count=0,
            rejected_events=[],
            breakdown=CallBreakdown.of(Breakdown.zero()),
            rate_card_version=None,
            margin_rate=None,
            authorized=self._decision["authorized"] if self._decision else None,
            runs=1,
        )


@workflow.defn(name=CALL_WORKFLOW)
class LedgerFloorCallWorkflow(BaselineCallWorkflow):
    """The baseline that also checkpoints usage as billing must (contract §2, §3): at a usage
    report that finds events pending for SIGNAL_GATHER, the billed workflow's rule, one local
    activity writes them to the ledger and raises the call's hold. Without the billed workflow's
    fallback timer (a call that stops reporting is not checkpointed), so it is the cheapest such
    workflow, a floor and not a contender."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[dict[str, Any]] = []
        self._pending_since: datetime | None = None
        self._checkpoints = 0

    @workflow.run
    async def run(self, call_input: dict[str, Any]) -> CallResult:
        await self._authorize(call_input)
        while True:
            await workflow.wait_condition(lambda: self._hangup is not None or self._gathered())
            if self._hangup is not None:
                return await self._finish()
            events, self._pending, self._pending_since = self._pending, [], None
            self._checkpoints += 1
            await workflow.execute_local_activity(
                "bench_raw_checkpoint",
                {"call_id": call_input["call_id"], "n": self._checkpoints, "events": events},
                start_to_close_timeout=timedelta(seconds=10),
            )

    def _gathered(self) -> bool:
        since = self._pending_since
        return since is not None and workflow.now() - since >= SIGNAL_GATHER

    @workflow.signal(name=USAGE_SIGNAL)
    def usage(self, payload: dict[str, Any]) -> None:
        known = len(self._events)
        super().usage(payload)  # the baseline's parsing and dedupe; new ids are appended last
        self._pending.extend(islice(self._events.values(), known, None))
        if self._pending and self._pending_since is None:
            self._pending_since = workflow.now()


def build_ledger_floor_worker(
    client: Client, pool: AsyncPool, task_queue: str = LEDGER_TASK_QUEUE, **tuning: Any
) -> Worker:
    """`LedgerFloorCallWorkflow` on the raw ledger's transactions (`RawLedgerActivities`)."""
    from ledger.policy import LedgerPolicy

    raw = RawLedgerActivities(pool, LedgerPolicy().min_balance_paisa)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[LedgerFloorCallWorkflow],
        activities=[raw.authorize, raw.checkpoint, raw.finalize],
        **tuning,
    )


async def run_worker(address: str, task_queue: str = BASELINE_TASK_QUEUE) -> None:
    """The three variants in one process: `task_queue` (plain), NOTIFY_TASK_QUEUE and
    LEDGER_TASK_QUEUE (when the settings name a database)."""
    from core.config import get_settings
    from db.async_pool import open_async_pool
    from worker.main import worker_tuning

    settings = get_settings()
    client = await Client.connect(address)
    tuning = worker_tuning(settings)  # the billing worker's runner, threads and polls
    plain = Worker(
        client,
        task_queue=task_queue,
        workflows=[BaselineCallWorkflow],
        activities=[noop_authorize, noop_finalize],
        **tuning,
    )
    notifying = Worker(
        client,
        task_queue=NOTIFY_TASK_QUEUE,
        workflows=[BaselineCallWorkflow, BenchAccountWorkflow],
        activities=[noop_authorize, NotifyingFinalize(client, NOTIFY_TASK_QUEUE).finalize],
        **tuning,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as running:
        await running.enter_async_context(plain)
        await running.enter_async_context(notifying)
        if settings.database_url:
            # The billing worker's pool size: the floor's transactions wait for connections as
            # the billed ones do.
            pool = await open_async_pool(
                settings.database_url, settings.worker_ledger_pool_size, name="baseline-ledger"
            )
            running.push_async_callback(pool.close)
            await running.enter_async_context(build_ledger_floor_worker(client, pool, **tuning))
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmark's no-billing baseline worker")
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", default=BASELINE_TASK_QUEUE)
    args = parser.parse_args()
    asyncio.run(run_worker(args.address, args.task_queue))


if __name__ == "__main__":
    main()
