"""The API key cache (api.key_cache): keys are kept per process, and a revocation still takes
effect at once in the process that revoked the key and within milliseconds in every other one
(NOTIFY billing_api_keys, migration 0009)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial

import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.key_cache import ApiKeyCache
from db.session import run_in_transaction
from ledger import api_keys
from ledger.api_keys import LiveKey
from tests.api.conftest import create_account
from tests.support.stack import RunningStack, start_stack, temporal_address

KEY = LiveKey("key_a", "orchestrator", None)
OTHER = LiveKey("key_b", "orchestrator", None)
PROPAGATION_SECONDS = 2.0  # the bound asserted for another process (NOTIFY takes milliseconds)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def listening_cache(ttl: float = 5.0) -> tuple[ApiKeyCache, Clock]:
    clock = Clock()
    cache = ApiKeyCache(ttl, clock)
    cache.reset(listening=True)
    return cache, clock


def test_a_live_key_is_kept_for_its_ttl() -> None:
    cache, clock = listening_cache(ttl=5.0)
    cache.put("hash_a", KEY, cache.epoch)
    assert cache.get("hash_a") == KEY
    clock.now += 4.9
    assert cache.get("hash_a") == KEY
    clock.now += 0.1
    assert cache.get("hash_a") is None
    assert "hash_a" not in cache.entries


def test_nothing_is_kept_while_not_listening() -> None:
    cache = ApiKeyCache(5.0)
    cache.put("hash_a", KEY, cache.epoch)
    assert cache.entries == {}
    cache.reset(listening=True)
    cache.put("hash_a", KEY, cache.epoch)
    cache.reset(listening=False)  # the listener lost its connection: everything is read again
    assert cache.get("hash_a") is None and cache.entries == {}


def test_forget_drops_the_key_and_voids_lookups_in_flight() -> None:
    cache, _ = listening_cache()
    cache.put("hash_a", KEY, cache.epoch)
    cache.put("hash_b", OTHER, cache.epoch)
    in_flight = cache.epoch  # a lookup of hash_a started before the revocation committed
    cache.forget("key_a")
    assert cache.get("hash_a") is None
    assert cache.get("hash_b") == OTHER
    cache.put("hash_a", KEY, in_flight)  # its (pre-revocation) answer is not kept
    assert cache.get("hash_a") is None
    cache.put("hash_a", KEY, cache.epoch)  # a lookup started after it is
    assert cache.get("hash_a") == KEY


async def test_listen_applies_changes_and_stops_caching_when_the_connection_fails() -> None:
    cache = ApiKeyCache(5.0)
    steps: asyncio.Queue[str | Exception | None] = asyncio.Queue()

    async def changes() -> AsyncIterator[str | None]:
        while True:
            step = await steps.get()
            if isinstance(step, Exception):
                raise step
            yield step

    task = asyncio.create_task(cache.listen(changes))
    try:
        await steps.put(None)  # listening
        await asyncio.sleep(0.01)
        assert cache.listening
        cache.put("hash_a", KEY, cache.epoch)
        cache.put("hash_b", OTHER, cache.epoch)
        await steps.put("key_a")
        await asyncio.sleep(0.01)
        assert cache.get("hash_a") is None and cache.get("hash_b") == OTHER
        await steps.put(OSError("connection lost"))
        await asyncio.sleep(0.01)
        assert not cache.listening and cache.entries == {}
        await steps.put(None)  # reconnected (after its back-off): caching again, from empty
        for _ in range(100):
            if cache.listening:
                break
            await asyncio.sleep(0.02)
        assert cache.listening and cache.entries == {}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not cache.listening


@pytest.fixture(scope="module")
def two_apis(
    database_url: str, workflow_env: WorkflowEnvironment
) -> Iterator[tuple[RunningStack, RunningStack]]:
    """Two API processes' apps on one database, keeping keys far longer than the test runs: a
    key refused here was refused because its revocation reached the process, not by expiry."""
    settings = {"api_key_cache_seconds": 300.0, "migrate_on_start": False}
    address = temporal_address(workflow_env)
    admin_key = "osk_admin_" + secrets.token_urlsafe(24)
    with (
        start_stack(
            database_url, address, with_worker=False, admin_key=admin_key, settings=settings
        ) as first,
        start_stack(
            database_url, address, with_worker=False, admin_key=admin_key, settings=settings
        ) as second,
    ):
        for running in (first, second):
            wait_until(partial(lambda r: cache_of(r).listening, running))
        yield first, second


def cache_of(stack: RunningStack) -> ApiKeyCache:
    cache: ApiKeyCache = stack.api.app.state.billing.key_cache
    return cache


def wait_until(condition: Callable[[], bool], timeout: float = PROPAGATION_SECONDS) -> float:
    """Seconds until `condition()` held (fails after `timeout`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


def customer_key(stack: RunningStack) -> tuple[str, str, str]:
    """(account id, key id, secret) of a new customer key."""
    account = create_account(stack)
    with stack.client(stack.admin_key) as admin:
        created = admin.post("/v1/api-keys", json={"role": "customer", "account_id": account.id})
    assert created.status_code == 201, created.text
    return account.id, created.json()["id"], created.json()["key"]


def balance_status(stack: RunningStack, secret: str, account_id: str) -> int:
    with stack.client(secret) as http:
        return http.get(f"/v1/accounts/{account_id}/balance").status_code


def test_a_key_revoked_in_one_process_is_refused_by_the_other_at_once(
    two_apis: tuple[RunningStack, RunningStack],
) -> None:
    first, second = two_apis
    account_id, key_id, secret = customer_key(first)
    for running in (first, second):
        assert balance_status(running, secret, account_id) == 200
    key_hash = api_keys.hash_api_key(secret)
    assert key_hash in cache_of(second).entries  # kept: the next request would not ask
    hits = cache_of(second).hits
    assert balance_status(second, secret, account_id) == 200
    assert cache_of(second).hits == hits + 1

    with first.client(first.admin_key) as admin:
        assert admin.delete(f"/v1/api-keys/{key_id}").status_code == 200
    assert balance_status(first, secret, account_id) == 401  # the revoking process: at once
    wait_until(lambda: key_hash not in cache_of(second).entries)
    assert balance_status(second, secret, account_id) == 401


def test_a_key_revoked_outside_the_api_is_refused_by_every_process(
    two_apis: tuple[RunningStack, RunningStack], session_factory: sessionmaker[Session]
) -> None:
    first, second = two_apis
    account_id, key_id, secret = customer_key(first)
    for running in (first, second):
        assert balance_status(running, secret, account_id) == 200
        assert api_keys.hash_api_key(secret) in cache_of(running).entries
    run_in_transaction(session_factory, lambda s: api_keys.revoke_api_key(s, key_id))
    for running in (first, second):
        wait_until(partial(lambda r: balance_status(r, secret, account_id) == 401, running))
