"""`GET /dashboard/events`: server-sent events for an open page. On connect it sends the
current balance and the newest calls (so a reconnect resyncs); then `balance` when the
account changes, `call` for each new or changed call row, `signed_out` when the key is revoked,
all pushed by this process's `LiveHub` (live.py), which listens to PostgreSQL once for every
open page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.dashboard import views
from api.dashboard.auth import SignedIn
from api.dashboard.live import hub
from api.deps import StateDep, run_db
from db.models import Call
from ledger import calls as ledger_calls
from ledger.posting import utcnow

router = APIRouter()
HEARTBEAT_SECONDS = 15.0
INITIAL_CALLS = 100


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get("/dashboard/events")
async def events(request: Request, who: SignedIn, state: StateDep) -> StreamingResponse:
    live = hub(request)
    account_id = who.account_id

    def initial(session: Session) -> tuple[dict[str, Any], list[Call]]:
        rows = ledger_calls.list_calls(session, account_id, before=None, limit=INITIAL_CALLS)
        return views.summary_payload(session, account_id), rows

    async def stream() -> AsyncIterator[str]:
        subscriber = live.subscribe(who)  # first, so nothing committed from now on is missed
        try:
            yield "retry: 1000\n\n"
            summary, rows = await run_db(state.session_factory, initial)
            yield sse("balance", summary)
            now, running = utcnow(), live.running_cost(account_id)
            for call in reversed(rows):
                yield sse("call", views.call_row(call, now, running.get(call.call_id)))
            while True:
                try:
                    event, data = await asyncio.wait_for(subscriber.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event == "resync":
                    return  # too far behind: the browser reconnects and starts afresh
                yield sse(event, data)
                if event == "signed_out":
                    return
        finally:
            live.unsubscribe(subscriber)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
