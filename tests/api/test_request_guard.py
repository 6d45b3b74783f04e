"""The request edge (api.request_guard) over real HTTP: text PostgreSQL cannot store is a 422
`validation_error` wherever it hides (body, query, path, header) and changes nothing; bodies over
1 MiB are 413 before they are read, with or without Content-Length. Plus the guard alone on ASGI
messages, where we can see what it read."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.request_guard import MAX_BODY_BYTES, RequestGuard, body_problem
from db.models import Account
from tests.api.conftest import create_account
from tests.support.stack import RunningStack

MIB = 1024 * 1024


def _post_raw(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers={"Content-Type": "application/json"})


def _assert_unstorable(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["type"] == "unstorable_text"


def test_nul_in_an_account_email_is_a_422_and_creates_nothing(
    stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    name = f"edge-{uuid.uuid4().hex}"
    with stack.client(stack.admin_key) as http:
        response = http.post("/v1/accounts", json={"name": name, "email": "a\u0000@b.example"})
    _assert_unstorable(response)
    with session_factory() as session:
        count = session.scalar(
            select(func.count()).select_from(Account).where(Account.name == name)
        )
    assert count == 0


def test_nul_in_a_coupon_code_and_in_an_authorize_account_id_are_422(
    stack: RunningStack, orchestrator_key: str
) -> None:
    customer = create_account(stack)
    with stack.client(customer.key) as http:
        _assert_unstorable(
            http.post(f"/v1/accounts/{customer.id}/coupons/preview", json={"code": "A\u0000"})
        )
    with stack.client(orchestrator_key) as http:
        _assert_unstorable(
            http.post("/v1/api-usage/authorize", json={"account_id": f"{customer.id}\u0000"})
        )


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "x", "email": "a\\ud800@b.example"}',  # a lone high surrogate, escaped
        b'{"name": "x", "email": "a\\udc00@b.example"}',  # a lone low surrogate
        b'{"name": "x", "email": "a@b.example", "\\ud83d": 1}',  # in an object key
        b'{"name": "x\xed\xa0\x80", "email": "a@b.example"}',  # a surrogate's UTF-8 bytes
        b'{"name": "x", "email": "a@b.example"}\x00',  # a raw NUL byte
        b'{"name": "x\\u0000", "email": "a@b.example"}',
    ],
)
def test_lone_surrogates_and_nul_in_a_body_are_422(stack: RunningStack, body: bytes) -> None:
    with stack.client(stack.admin_key) as http:
        _assert_unstorable(_post_raw(http, "/v1/accounts", body))


def test_a_valid_surrogate_pair_and_an_escaped_backslash_u_are_fine(stack: RunningStack) -> None:
    body = {"name": "Clinic \U0001f600 \\u0000 literally", "email": "a@b.example"}
    with stack.client(stack.admin_key) as http:
        response = _post_raw(http, "/v1/accounts", json.dumps(body).encode())  # \ud83d\ude00
        assert response.status_code == 201, response.text
        assert response.json()["account"]["name"] == body["name"]


def test_nul_in_a_query_or_a_path_is_422_on_any_route(
    stack: RunningStack, support_key: str
) -> None:
    customer = create_account(stack)
    with stack.client(customer.key) as http:
        _assert_unstorable(http.get("/v1/rate-cards/current", params={"note": "a\u0000"}))
        _assert_unstorable(http.get(f"/v1/accounts/{customer.id}/transactions?cursor=%00"))
        _assert_unstorable(http.get("/v1/accounts/acc%00x/balance"))
    with stack.client(support_key) as http:
        _assert_unstorable(http.get("/v1/refunds/ref_%00"))
        _assert_unstorable(http.get("/v1/calls/c%00"))
    with stack.client() as http:  # before authentication too, and outside /v1
        _assert_unstorable(http.get("/healthz?probe=%00"))


def _raw_request(stack: RunningStack, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request on a socket of our own; the body is sent as given (chunked or short)."""
    port = int(stack.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):  # these answers close the connection
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def test_nul_in_a_header_never_reaches_the_ledger(stack: RunningStack) -> None:
    head = (
        b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {stack.admin_key}\r\n".encode()
        + b"Idempotency-Key: a\x00b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    )
    status, _ = _raw_request(stack, head, b"{}")
    assert status in (400, 422)  # uvicorn refuses it first; else the guard does


def test_a_content_length_over_1_mib_is_413_before_the_body_is_sent(stack: RunningStack) -> None:
    head = (
        b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {stack.admin_key}\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {2 * MIB}\r\n\r\n".encode()
    )
    status, answer = _raw_request(stack, head)  # not one byte of the body
    assert status == 413, answer
    assert b'"code":"payload_too_large"' in answer


def test_a_chunked_body_is_413_as_soon_as_it_passes_1_mib(stack: RunningStack) -> None:
    head = (
        b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {stack.admin_key}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = 64 * 1024
    chunks = b"".join(b"%x\r\n" % piece + b" " * piece + b"\r\n" for _ in range(MIB // piece))
    # Exactly 1 MiB is allowed; one more byte is not. No final chunk: the guard must not wait.
    status, answer = _raw_request(stack, head, chunks + b"1\r\n \r\n")
    assert status == 413, answer


def test_a_body_of_exactly_1_mib_passes_the_guard(stack: RunningStack) -> None:
    body = json.dumps({"name": "x" * (MIB - 40), "email": "a@b.example"}).encode()
    body += b" " * (MIB - len(body))
    assert len(body) == MIB
    with stack.client(stack.admin_key) as http:
        response = _post_raw(http, "/v1/accounts", body)
    assert response.status_code == 422  # the name is too long: the route, not the guard, said so
    assert response.json()["errors"][0]["type"] != "unstorable_text"


# --- the guard alone -----------------------------------------------------------------------


async def _run_guard(
    *, headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/x"
) -> tuple[int, int, bytes | None]:
    """(status, body messages the guard read, body the app got or None)."""
    read = 0
    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        body = chunks[read - 1] if read <= len(chunks) else b""
        return {"type": "http.request", "body": body, "more_body": read < len(chunks)}

    statuses: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b""}
    scope["headers"] = headers
    await RequestGuard(app)(scope, receive, send)
    return statuses[0], read, seen[0] if seen else None


async def test_the_guard_refuses_a_large_content_length_without_reading() -> None:
    status, read, got = await _run_guard(
        headers=[(b"content-length", str(MAX_BODY_BYTES + 1).encode())], chunks=[b"x"]
    )
    assert (status, read, got) == (413, 0, None)


async def test_the_guard_stops_reading_a_stream_at_the_limit() -> None:
    chunks = [b"x" * (256 * 1024)] * 8  # 2 MiB offered, no Content-Length
    status, read, got = await _run_guard(headers=[], chunks=chunks)
    assert (status, got) == (413, None)
    assert read == 5  # 1.25 MiB read: the first chunk past the limit, not one more


async def test_the_guard_replays_the_body_and_checks_headers() -> None:
    status, _, got = await _run_guard(headers=[], chunks=[b'{"a":', b'"b"}'])
    assert (status, got) == (204, b'{"a":"b"}')
    status, read, got = await _run_guard(headers=[(b"x-note", b"a\x00")], chunks=[b"{}"])
    assert (status, read, got) == (422, 0, None)


def test_body_problem_is_exact_about_escapes() -> None:
    assert body_problem(b'{"a": "\\\\u0000"}') is None  # an escaped backslash, then "u0000"
    assert body_problem(b'{"a": "\\\\\\u0000"}') is not None  # backslash, then a real NUL
    assert body_problem(b'{"a": "\\ud83d\\ude00"}') is None  # a pair is a character
    assert body_problem(b"api_key=osk%00x") is not None  # a form field
    assert body_problem(b"api_key=osk%2500x") is None  # "%00" as text
    assert body_problem(b"[" * 100_000) is None  # too deep for json: the route answers 400
