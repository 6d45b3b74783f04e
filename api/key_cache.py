"""The API keys this process looked up, kept for `API_KEY_CACHE_SECONDS` so a busy caller's
requests skip the key's round trip to PostgreSQL (api.auth.authenticate).

Revocation still takes effect at once:
- in the process that revoked the key, `forget(key_id)` runs right after the commit;
- in every other process, the commit's `NOTIFY billing_api_keys` (migration 0009) reaches
  `listen()`, which forgets the key within milliseconds;
- the cache is used only while that listener is connected: before it listens, after it lost its
  connection and until it is back (then it starts empty), every request reads its key again;
- a lookup that began before a change is not stored after it (`epoch`), so an answer read just
  before a revocation cannot outlive the notification;
- at worst (a notification lost on a connection that died silently) an entry lives its TTL.

Only live keys are kept (unknown secrets are never stored: nobody can fill the cache)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from ledger.api_keys import LiveKey

log = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
MAX_ENTRIES = 10_000  # a bound on memory; past it the oldest entries go


class ApiKeyCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self.entries: dict[str, tuple[LiveKey, float]] = {}  # key hash → (key, expires at)
        self.epoch = 0  # bumped by every change and (re)connect of the listener
        self.listening = False
        self.hits = 0

    def get(self, key_hash: str) -> LiveKey | None:
        if not self.listening:
            return None
        found = self.entries.get(key_hash)
        if found is None:
            return None
        key, expires = found
        if self.clock() >= expires:
            del self.entries[key_hash]
            return None
        self.hits += 1
        return key

    def put(self, key_hash: str, key: LiveKey, epoch: int) -> None:
        """Keep `key`, read from the database after `epoch` was taken, unless anything changed
        since (then a revocation may have crossed the read: the next request reads again)."""
        if not self.listening or epoch != self.epoch or self.ttl <= 0:
            return
        if len(self.entries) >= MAX_ENTRIES:
            del self.entries[next(iter(self.entries))]
        self.entries[key_hash] = (key, self.clock() + self.ttl)

    def forget(self, key_id: str) -> None:
        self.epoch += 1
        for key_hash in [h for h, (key, _) in self.entries.items() if key.id == key_id]:
            del self.entries[key_hash]

    def reset(self, *, listening: bool) -> None:
        self.epoch += 1
        self.entries.clear()
        self.listening = listening

    async def listen(self, changes: Callable[[], AsyncIterator[str | None]]) -> None:
        """Apply `changes()` (ledger.api_keys.key_changes: None once listening, then changed key
        ids) until cancelled, reconnecting after a failure; no caching while disconnected."""
        failures = 0
        while True:
            try:
                async for key_id in changes():
                    if key_id is None:
                        self.reset(listening=True)
                        failures = 0
                    else:
                        self.forget(key_id)
            except asyncio.CancelledError:
                self.reset(listening=False)
                raise
            except Exception as exc:
                log.warning("the API key listener lost its connection: %s", exc)
            self.reset(listening=False)
            await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1
