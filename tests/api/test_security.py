"""The secure-by-default edge over real HTTP: the login throttle, security headers, cookie flags
in development and production, per-key rate limits with Retry-After, authentication before any
idempotency write, and what the OpenAPI document declares about all of it.

Throttles keep state per app, so each test that spends a budget gets a server of its own (on the
run's database, where `stack` creates the keys)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.openapi import STORABLE_TEXT, pattern_excludes_unstorable
from core.config import Settings
from db.models import IdempotencyRecord
from tests.api.conftest import create_account, create_key
from tests.support.stack import ApiServer, RunningStack


@contextlib.contextmanager
def server(stack: RunningStack, **overrides: Any) -> Iterator[ApiServer]:
    settings: dict[str, Any] = {
        "billing_env": "development",
        "database_url": stack.database_url,
        "temporal_address": stack.temporal_address,
        "admin_api_key": stack.admin_key,
        **overrides,
    }
    with ApiServer(Settings(**settings)) as running:
        yield running


def login(base_url: str, api_key: str, *, source: str = "127.0.0.1", **kw: Any) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)  # another client address
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as http:
        return http.post("/login", data={"api_key": api_key}, **kw)


def test_the_11th_failed_login_in_a_minute_is_429_whatever_the_key(stack: RunningStack) -> None:
    customer = create_account(stack)
    with server(stack) as api:
        for attempt in range(10):
            failed = login(api.base_url, f"osk_wrong_{attempt}")
            assert failed.status_code == 401, (attempt, failed.text)
        refused = login(api.base_url, "osk_wrong_11")
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Even the right key: a throttled address learns nothing about the keys it tries.
        assert login(api.base_url, customer.key).status_code == 429
        page = login(api.base_url, "osk_x", headers={"Accept": "text/html"})
        assert page.status_code == 429 and "Too many failed sign-ins" in page.text
        # Another client address is not affected.
        assert login(api.base_url, customer.key, source="127.0.0.2").status_code == 303


def test_a_successful_login_does_not_reset_the_failures(stack: RunningStack) -> None:
    customer = create_account(stack)
    with server(stack) as api:
        for attempt in range(9):
            assert login(api.base_url, f"osk_wrong_{attempt}").status_code == 401
        assert login(api.base_url, customer.key).status_code == 303
        assert login(api.base_url, "osk_wrong_10").status_code == 401  # the 10th failure
        assert login(api.base_url, customer.key).status_code == 429


def _assert_security_headers(response: httpx.Response) -> None:
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_pages_and_answers_carry_the_security_headers(stack: RunningStack) -> None:
    customer = create_account(stack)
    with stack.client() as http:
        page = http.get("/login")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        _assert_security_headers(page)
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        signed_in = http.post("/login", data={"api_key": customer.key})
        assert signed_in.status_code == 303
        billing = http.get("/billing")
        assert billing.status_code == 200 and "text/html" in billing.headers["content-type"]
        _assert_security_headers(billing)
        _assert_security_headers(http.get("/v1/rate-cards/current"))  # a 401 problem too
        docs = http.get("/docs")  # Swagger UI's CDN scripts: framing protection only
        assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert "strict-transport-security" not in page.headers  # development


def _cookie_flags(response: httpx.Response) -> str:
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("osmtalk_dashboard="), cookie
    return cookie.lower()


def test_the_session_cookie_is_secure_except_in_plain_http_development(
    stack: RunningStack,
) -> None:
    customer = create_account(stack)
    development = _cookie_flags(login(stack.base_url, customer.key))
    assert "httponly" in development and "samesite=lax" in development
    assert "secure" not in development
    production = {"billing_env": "production", "session_secret": secrets.token_hex(32)}
    with server(stack, **production) as api:
        response = login(api.base_url, customer.key)
        flags = _cookie_flags(response)
        assert "httponly" in flags and "samesite=lax" in flags and "; secure" in flags
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(stack: RunningStack) -> None:
    first, second = create_account(stack), create_account(stack)
    orchestrator = create_key(stack, "orchestrator")
    with (
        server(stack, rate_limit_customer="3/minute") as api,
        httpx.Client(base_url=api.base_url, timeout=30) as http,
    ):

        def balance(key: str, account_id: str) -> httpx.Response:
            return http.get(
                f"/v1/accounts/{account_id}/balance", headers={"Authorization": f"Bearer {key}"}
            )

        assert [balance(first.key, first.id).status_code for _ in range(3)] == [200] * 3
        limited = balance(first.key, first.id)
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert balance(second.key, second.id).status_code == 200  # per key
        rate_card = {"Authorization": f"Bearer {orchestrator}"}
        for _ in range(20):  # orchestrator keys: no limit unless configured
            assert http.get("/v1/rate-cards/current", headers=rate_card).status_code == 200


def test_an_unknown_caller_writes_no_idempotency_record(
    stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    key = f"edge-{uuid.uuid4().hex}"
    body = {"name": "Edge", "email": "edge@x.example"}
    callers = {"Bearer osk_not_a_key": {"Authorization": "Bearer osk_not_a_key"}, "": {}}
    with session_factory() as holder:
        # Our own uncommitted claims of the key in both callers' scopes: a request that tried to
        # claim it would wait for this transaction (and time out) instead of answering 401.
        for authorization in callers:
            scope = hashlib.sha256(authorization.encode()).hexdigest()
            holder.add(
                IdempotencyRecord(
                    principal=scope, key=key, method="POST", path="/", request_hash="-" * 64
                )
            )
        holder.flush()
        with stack.client(timeout=5) as http:
            for headers in callers.values():
                answer = http.post(
                    "/v1/accounts", json=body, headers={**headers, "Idempotency-Key": key}
                )
                assert answer.status_code == 401, answer.text
        holder.rollback()
    with session_factory() as session:
        records = select(func.count()).select_from(IdempotencyRecord)
        assert session.scalar(records.where(IdempotencyRecord.key == key)) == 0
    with stack.client(stack.admin_key) as http:  # the key is free for the real caller
        created = http.post("/v1/accounts", json=body, headers={"Idempotency-Key": key})
        assert created.status_code == 201, created.text


@pytest.mark.parametrize("bad", ["has space", "x" * 256, "ключ"])
def test_an_idempotency_key_is_1_to_255_visible_ascii_characters(
    stack: RunningStack, bad: str
) -> None:
    with stack.client(stack.admin_key) as http:
        response = http.post(
            "/v1/accounts",
            json={"name": "Edge", "email": "edge@x.example"},
            headers=[(b"Idempotency-Key", bad.encode())],
        )
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


def _string_schemas(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "string":
            yield schema
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for child in schema.get(key, ()):
                yield from _string_schemas(child)
        for key in ("items", "additionalProperties", "not"):
            yield from _string_schemas(schema.get(key))
        for child in schema.get("properties", {}).values():
            yield from _string_schemas(child)


def test_the_openapi_declares_what_the_edge_enforces(stack: RunningStack) -> None:
    with stack.client() as http:
        document = http.get("/openapi.json").json()
    strings = [s for c in document["components"]["schemas"].values() for s in _string_schemas(c)]
    operations = [op for item in document["paths"].values() for op in item.values()]
    for operation in operations:
        for parameter in operation.get("parameters", ()):
            strings.extend(_string_schemas(parameter["schema"]))
    for schema in strings:
        if {"enum", "const", "format"} & schema.keys() or schema.get("pattern") == STORABLE_TEXT:
            continue
        pattern = schema.get("pattern", "")
        assert pattern_excludes_unstorable(pattern) or {"pattern": STORABLE_TEXT} in schema.get(
            "allOf", []
        ), schema
    assert re.search(STORABLE_TEXT, "a\x00") is None and re.search(STORABLE_TEXT, "aé")
    create = document["paths"]["/v1/accounts"]["post"]
    assert {"413", "422", "429"} <= create["responses"].keys()
    assert "Retry-After" in create["responses"]["429"]["headers"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    key_schema = next(s for s in header["schema"]["anyOf"] if s["type"] == "string")
    assert key_schema["maxLength"] == 255 and key_schema["pattern"] == "^[!-~]{1,255}$"
    balance = document["paths"]["/v1/accounts/{account_id}/balance"]["get"]
    account_id = next(p for p in balance["parameters"] if p["name"] == "account_id")
    assert account_id["schema"]["maxLength"] == 64
    assert "1 MiB" in document["info"]["description"]


def test_pattern_analysis_is_conservative() -> None:
    safe = [
        r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$",
        r"^[0-9]{1,10}(\.[0-9]{1,9})?$",
        "^[!-~]{1,255}$",
        r"^[.a]\.$",
        r"^(10(\.0{1,4})?|[0-9](\.[0-9]{1,4})?)$",
    ]
    unsafe = [r"\S", r"^\S+$", r"^[^@\s]+@[^@\s]+$", "^.*$", r"^[\x00-z]$", "ab"]
    unsafe += ["^a|b$", r"^(a)|b$", r"^a\$"]  # not anchored at both ends
    assert all(pattern_excludes_unstorable(p) for p in safe)
    assert not any(pattern_excludes_unstorable(p) for p in unsafe)
