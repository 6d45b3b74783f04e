"""The ledger's change feed: PostgreSQL notifications sent by row triggers (migration 0006)
when an account's balance row or one of its calls changes (`a:<account_id>`) and when an API
key is revoked (`k:<key_id>`). Delivered at commit, so a listener never sees a change that
is rolled back; identical payloads of one transaction arrive once.

`changes(url)` listens on one connection and yields `Change`s; a `Change` with neither id
(`resync`) comes first after every (re)connect: anything may have changed meanwhile."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import psycopg

LIVE_CHANNEL = "billing_live"
IDLE_CHECK_SECONDS = 20.0  # a quiet connection is probed this often, so a dead one is noticed


@dataclass(frozen=True)
class Change:
    account_id: str | None = None
    key_id: str | None = None

    @property
    def resync(self) -> bool:
        return self.account_id is None and self.key_id is None


def parse(payload: str) -> Change | None:
    kind, _, ident = payload.partition(":")
    if not ident:
        return None
    if kind == "a":
        return Change(account_id=ident)
    if kind == "k":
        return Change(key_id=ident)
    return None


def conninfo(database_url: str) -> str:
    """psycopg's form of a SQLAlchemy URL (`postgresql+psycopg://` → `postgresql://`)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    return database_url


async def changes(database_url: str) -> AsyncGenerator[Change, None]:
    """Every change committed from now on, until the connection fails (then it raises)."""
    async with await psycopg.AsyncConnection.connect(
        conninfo(database_url), autocommit=True, application_name="billing-live"
    ) as connection:
        await connection.execute(f"LISTEN {LIVE_CHANNEL}")
        yield Change()
        while True:
            async for notification in connection.notifies(timeout=IDLE_CHECK_SECONDS):
                change = parse(notification.payload)
                if change is not None:
                    yield change
            await connection.execute("SELECT 1")
