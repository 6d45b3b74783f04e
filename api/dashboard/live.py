"""Live updates for every open dashboard page of this API process, from ONE PostgreSQL
listener (ledger.live: row triggers NOTIFY on commit) fanned out to the pages.

- `LiveHub`: one per process (`hub(state)`); it holds the listener and an `AccountFeed` per
  account that has a page open. A notification for an account marks its feed dirty; a dirty
  feed reads once (balance if it changed, the calls changed since its cursor) and pushes the
  changes to every page of that account. Quiet accounts cost nothing; N tabs of one account
  cost one read per change, not N polls a second.
- A revoked API key (`k:<id>`) signs its pages out at once; every `REVALIDATE_SECONDS` all
  keys are re-checked in one transaction anyway.
- Resilience: while the listener is down (database restart) the feeds fall back to a read
  every `FALLBACK_POLL_SECONDS`, and after every (re)connect all feeds re-read, so nothing
  committed meanwhile is missed.
- Active calls' running cost comes from their workflows' `status` query
  (`api.calls.service.workflow_status`), every `RUNNING_COST_SECONDS`, once per feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session

from api.calls.service import workflow_status
from api.dashboard import auth, views
from api.deps import BillingState, run_db, state_of
from db.models import Call
from domain.contracts import CallState
from domain.contracts.calls import CallBreakdown
from ledger import accounts
from ledger import calls as ledger_calls
from ledger.live import Change, changes
from ledger.posting import utcnow

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.05  # changes arriving together are read together
RECENT_WINDOW = timedelta(seconds=10)  # re-read rows this far back: commits land out of order
FALLBACK_POLL_SECONDS = 2.0
REVALIDATE_SECONDS = 60.0
RUNNING_COST_SECONDS = 2.0
RUNNING_STATUS_TIMEOUT = 2.0
MAX_RUNNING_QUERIES = 20
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
QUEUE_LIMIT = 1000  # a page this far behind is dropped; it reconnects and resyncs

Event = tuple[str, Any]


class Subscriber:
    """One open page: the events for it, in order."""

    def __init__(self, signed_in: auth.DashboardSession) -> None:
        self.signed_in = signed_in
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.overflowed = False

    def push(self, event: str, data: Any) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue.get_nowait()
            self.queue.put_nowait(("resync", {}))


class AccountFeed:
    """The changes of one account, read once and pushed to each of its open pages."""

    def __init__(self, hub: LiveHub, account_id: str) -> None:
        self.hub = hub
        self.account_id = account_id
        self.subscribers: set[Subscriber] = set()
        self.dirty = asyncio.Event()
        self.cursor: datetime | None = None
        self.balance_key: tuple[int, int, int] | None = None
        self.sent: dict[str, tuple[Any, ...]] = {}
        self.active: dict[str, Call] = {}
        self.running: dict[str, CallBreakdown] = {}
        self.tasks = [
            asyncio.create_task(self._refresh_loop(), name=f"live-feed-{account_id}"),
            asyncio.create_task(self._running_loop(), name=f"live-running-{account_id}"),
        ]
        self.reads = 0
        self.dirty.set()  # the first read sets the cursor and the balance

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()

    def _broadcast(self, event: str, data: Any) -> None:
        for subscriber in list(self.subscribers):
            subscriber.push(event, data)

    def _read(self, session: Session) -> tuple[dict[str, Any] | None, list[Call]]:
        self.reads += 1
        account = accounts.find_account(session, self.account_id)
        balance = None
        if account is not None:
            key = (account.version, account.reserved_paisa, account.paid_paisa)
            if key != self.balance_key:
                balance = views.summary_payload(session, self.account_id)
                self.balance_key = key
        since = (self.cursor or utcnow()) - RECENT_WINDOW
        rows = ledger_calls.calls_updated_since(session, self.account_id, since, limit=500)
        newest = max((c.updated_at for c in rows), default=None)
        if newest is not None and (self.cursor is None or newest > self.cursor):
            self.cursor = newest
        if self.cursor is None:
            self.cursor = utcnow()
        return balance, rows

    def _push_rows(self, rows: list[Call]) -> None:
        now = utcnow()
        for call in rows:
            row = views.call_row(call, now, self.running.get(call.call_id))
            fingerprint = (row["status"], row["updated_at"], row["cost_paisa"])
            if self.sent.get(call.call_id) != fingerprint:
                self.sent[call.call_id] = fingerprint
                self._broadcast("call", row)
            if call.status == CallState.ACTIVE:
                self.active[call.call_id] = call
            else:
                self.active.pop(call.call_id, None)
                self.running.pop(call.call_id, None)

    async def _refresh_loop(self) -> None:
        while True:
            await self.dirty.wait()
            await asyncio.sleep(DEBOUNCE_SECONDS)
            self.dirty.clear()
            try:
                balance, rows = await run_db(self.hub.state.session_factory, self._read)
            except Exception:
                log.warning("live read for %s failed", self.account_id, exc_info=True)
                await asyncio.sleep(FALLBACK_POLL_SECONDS)
                self.dirty.set()
                continue
            if balance is not None:
                self._broadcast("balance", balance)
            self._push_rows(rows)

    async def _running_loop(self) -> None:
        while True:
            await asyncio.sleep(RUNNING_COST_SECONDS)
            calls = list(self.active.values())[:MAX_RUNNING_QUERIES]
            if not calls:
                continue
            statuses = await asyncio.gather(
                *(workflow_status(self.hub.state, c.call_id, RUNNING_STATUS_TIMEOUT) for c in calls)
            )
            for call, status in zip(calls, statuses, strict=True):
                if status is not None and status.state == CallState.ACTIVE:
                    self.running[call.call_id] = status.breakdown
            self._push_rows([c for c in calls if c.call_id in self.active])


class LiveHub:
    def __init__(self, state: BillingState) -> None:
        self.state = state
        self.feeds: dict[str, AccountFeed] = {}
        self.listening = False
        self.notifications = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._checks: set[asyncio.Task[None]] = set()  # key re-checks in flight

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="live-listener"),
                asyncio.create_task(self._watch(), name="live-watchdog"),
            ]

    def subscribe(self, signed_in: auth.DashboardSession) -> Subscriber:
        self._start()
        subscriber = Subscriber(signed_in)
        feed = self.feeds.get(signed_in.account_id)
        if feed is None:
            feed = self.feeds[signed_in.account_id] = AccountFeed(self, signed_in.account_id)
        feed.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        account_id = subscriber.signed_in.account_id
        feed = self.feeds.get(account_id)
        if feed is None:
            return
        feed.subscribers.discard(subscriber)
        if not feed.subscribers:
            feed.close()
            del self.feeds[account_id]

    def running_cost(self, account_id: str) -> dict[str, CallBreakdown]:
        feed = self.feeds.get(account_id)
        return dict(feed.running) if feed is not None else {}

    def _mark_all_dirty(self) -> None:
        for feed in self.feeds.values():
            feed.dirty.set()

    def _on_change(self, change: Change) -> None:
        self.notifications += 1
        if change.resync:
            self._mark_all_dirty()
            self._check_keys(None)
        elif change.account_id is not None:
            feed = self.feeds.get(change.account_id)
            if feed is not None:
                feed.dirty.set()
        elif change.key_id is not None:
            self._check_keys(change.key_id)

    def _check_keys(self, key_id: str | None) -> None:
        task = asyncio.create_task(self._revalidate(key_id))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async for change in changes(self.state.database_url):
                    self.listening = True
                    failures = 0
                    self._on_change(change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live listener lost its connection: %s", exc)
            self.listening = False
            await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1

    async def _watch(self) -> None:
        """Polls only while the listener is down; re-checks every key now and then."""
        waited = 0.0
        while True:
            await asyncio.sleep(FALLBACK_POLL_SECONDS)
            waited += FALLBACK_POLL_SECONDS
            if not self.listening:
                self._mark_all_dirty()
            if waited >= REVALIDATE_SECONDS:
                waited = 0.0
                await self._revalidate()

    async def _revalidate(self, key_id: str | None = None) -> None:
        """Sign out the pages whose key was revoked (`key_id`: only that key's)."""
        subscribers = [
            s
            for feed in self.feeds.values()
            for s in feed.subscribers
            if key_id is None or s.signed_in.key_id == key_id
        ]
        if not subscribers:
            return
        sessions = {s.signed_in for s in subscribers}
        try:
            valid = await run_db(
                self.state.session_factory,
                lambda db: {s for s in sessions if auth.still_valid(db, s)},
            )
        except Exception:
            log.warning("live key re-check failed", exc_info=True)
            return
        for subscriber in subscribers:
            if subscriber.signed_in not in valid:
                subscriber.push("signed_out", {})

    async def close(self) -> None:
        for feed in self.feeds.values():
            feed.close()
        self.feeds.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []


def hub(request: Request) -> LiveHub:
    """This process's hub (created on first use, stopped with the app)."""
    found: LiveHub | None = getattr(request.app.state, "live_hub", None)
    if found is None:
        found = request.app.state.live_hub = LiveHub(state_of(request))
    return found


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Nested in the app's lifespan (FastAPI merges router lifespans): stop the hub's tasks."""
    yield
    found: LiveHub | None = getattr(app.state, "live_hub", None)
    if found is not None:
        await found.close()
