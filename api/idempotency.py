"""`Idempotency-Key` on mutating endpoints (records kept by ledger.idempotency).

The same key with the same method, path and JSON body replays the first successful answer (with
`Idempotent-Replayed: true`); the same key with anything else is 409 `conflict`; a twin still in
flight is 409 `idempotency_in_progress`. Keys are scoped to the caller's API key, which is
authenticated (api.auth.authenticate) before anything is claimed: an unknown caller writes
nothing. A key is 1 to 255 visible ASCII characters (`KEY_PATTERN`). Only 2xx answers
are kept: a refused request changed nothing, so repeating it simply runs it again. Secrets in an
answer (a new API key) are shown once and never stored: a replay returns them as null.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from fastapi import Header, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker

from api.auth import authenticate
from api.errors import problem
from db.models import IdempotencyRecord
from db.session import run_in_transaction
from ledger import idempotency
from ledger.api_keys import API_KEY_PREFIX

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Visible ASCII, no spaces (UUIDs, ULIDs, "order-42/attempt-1"...): declared in OpenAPI too.
KEY_PATTERN = rf"^[!-~]{{1,{MAX_KEY_LENGTH}}}$"
_KEY = re.compile(KEY_PATTERN)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def idempotency_key_header(
    idempotency_key: str | None = Header(
        None,
        alias=HEADER,
        max_length=MAX_KEY_LENGTH,
        pattern=KEY_PATTERN,
        description="Repeat a request safely: the same key and body replay the first answer; "
        "the same key with another body is 409 conflict. 1 to 255 visible ASCII characters.",
        examples=["6f1c2b4e-topup-2026-11-28"],
    ),
) -> str | None:
    """Documents the header in OpenAPI; the work is done by `IdempotentRoute`. (`async`: a plain
    `def` dependency costs a thread hop per request.)"""
    return idempotency_key


def _scope(request: Request) -> str:
    return hashlib.sha256(request.headers.get("authorization", "").encode()).hexdigest()


def _request_hash(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _claim(
    factory: sessionmaker[Session], scope: str, key: str, method: str, path: str, digest: str
) -> IdempotencyRecord | None:
    """None when we own the key now, else the existing record."""
    return run_in_transaction(
        factory, lambda s: idempotency.claim_key(s, scope, key, method, path, digest)
    )


def _store(factory: sessionmaker[Session], scope: str, key: str, status: int, body: Any) -> None:
    run_in_transaction(factory, lambda s: idempotency.store_answer(s, scope, key, status, body))


def _release(factory: sessionmaker[Session], scope: str, key: str) -> None:
    run_in_transaction(factory, lambda s: idempotency.release_key(s, scope, key))


def redact_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: None
            if k == "key" and isinstance(v, str) and v.startswith(API_KEY_PREFIX)
            else redact_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


class IdempotentRoute(APIRoute):
    """An APIRoute whose mutating handlers honour `Idempotency-Key`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        if not ((self.methods or set()) & MUTATING):
            return original

        async def handler(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return await original(request)
            # Nothing is written for a caller we do not know (401) or that is over its limit.
            await authenticate(request)
            if not _KEY.fullmatch(key):
                return problem(
                    422,
                    "validation_error",
                    f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
                )
            factory: sessionmaker[Session] = request.app.state.billing.session_factory
            scope = _scope(request)
            digest = _request_hash(request.method, request.url.path, await request.body())
            existing = await anyio.to_thread.run_sync(
                _claim, factory, scope, key, request.method, request.url.path, digest
            )
            if existing is not None:
                if existing.request_hash != digest:
                    return problem(
                        409,
                        "conflict",
                        f"{HEADER} {key!r} was already used with another request",
                    )
                if existing.status_code is None:
                    return problem(
                        409,
                        "idempotency_in_progress",
                        f"a request with {HEADER} {key!r} is still in progress",
                    )
                return JSONResponse(
                    existing.response_body,
                    status_code=existing.status_code,
                    headers={"Idempotent-Replayed": "true"},
                )
            try:
                response = await original(request)
            except BaseException:
                await anyio.to_thread.run_sync(_release, factory, scope, key)
                raise
            if 200 <= response.status_code < 300:
                body = json.loads(bytes(response.body)) if response.body else None
                await anyio.to_thread.run_sync(
                    _store, factory, scope, key, response.status_code, redact_secrets(body)
                )
            else:
                await anyio.to_thread.run_sync(_release, factory, scope, key)
            return response

        return handler
