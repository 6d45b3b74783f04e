"""The request edge, before any route reads anything (contract §4, "Edges anyone can reach"):

- a body over `MAX_BODY_BYTES` (1 MiB) is 413 `payload_too_large` before it is read: a
  `Content-Length` over the limit is refused at once, a body without one (chunked) is counted as
  it arrives and refused as soon as it passes the limit;
- text PostgreSQL cannot store (NUL, lone UTF-16 surrogates) in the path, the query, a header or
  the body (JSON strings and object keys, form fields) is 422 `validation_error`.

One check for every endpoint, the dashboard included, so no route can forget it. The body (at
most 1 MiB) is buffered and replayed to the app; only bodies that could hide such text (a NUL
byte, a `\\u` escape, UTF-8 bytes of a surrogate or `%00`) are parsed here, the rest pass on
after a byte scan.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem

MAX_BODY_BYTES = 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bytes without which a body cannot carry NUL or a surrogate into a decoded string: a raw NUL,
# a JSON \u escape, the UTF-8 encoding of a surrogate (0xED 0xA0..0xBF, which Python's JSON
# decoder lets through) and a percent-encoded NUL in a form.
_SUSPECT_BODY = re.compile(rb"\x00|\\u|\xed[\xa0-\xbf]|%00")


def unstorable(text: str) -> bool:
    """True when PostgreSQL cannot store `text` in a text column (UTF-8): a NUL or a surrogate."""
    return "\x00" in text or _SURROGATE.search(text) is not None


def _json_holds_unstorable(value: Any) -> bool:
    stack = [value]  # iterative: nesting depth is up to the client
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if unstorable(item):
                return True
        elif isinstance(item, dict):
            for key, child in item.items():
                if unstorable(key):
                    return True
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def body_problem(body: bytes) -> str | None:
    """Why `body` would put unstorable text into a string, or None."""
    if _SUSPECT_BODY.search(body) is None:
        return None
    if b"\x00" in body:
        return "the body contains a NUL byte (bodies are UTF-8 JSON or forms)"
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        # Not JSON: a form's %00 decodes to NUL; anything else the route refuses on its own.
        return "a form field contains a NUL character" if b"%00" in body else None
    if _json_holds_unstorable(parsed):
        return "a string contains a NUL character or a lone UTF-16 surrogate"
    return None


def head_problem(scope: Scope) -> tuple[str, str] | None:
    """(where, why) when the path, the query or a header carries unstorable text."""
    if unstorable(scope.get("path", "")):
        return "path", "the path contains a NUL character"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "query", "a query parameter contains a NUL character"
    for name, value in scope.get("headers", ()):
        if b"\x00" in value:
            return f"header.{name.decode('latin-1')}", "a header contains a NUL character"
    return None


def _content_length(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return str(value.decode("latin-1"))
    return None


class RequestGuard:
    """Pure ASGI middleware: 413 for large bodies, 422 for unstorable text, then the app."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = head_problem(scope)
        if found is not None:
            await self._refuse(scope, receive, send, 422, *found)
            return
        length = _content_length(scope)
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        why = body_problem(body)
        if why is not None:
            await self._refuse(scope, receive, send, 422, "body", why)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "payload_too_large",
            f"request bodies are limited to {self.max_body_bytes} bytes",
            # The rest of the body is never read: the connection cannot be reused.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, where: str, why: str
    ) -> None:
        response = problem(
            status,
            "validation_error",
            f"{where}: {why}; PostgreSQL cannot store it",
            extra={"errors": [{"loc": where, "msg": why, "type": "unstorable_text"}]},
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body as one message, then the real channel (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
