"""A small local stand-in for SendGrid's v3 mail API, for development and tests.

    python -m dev.email_capture --port 8025

- `POST /v3/mail/send`: SendGrid's endpoint. Needs `Authorization: Bearer <anything>`, checks the
  body's shape (personalizations with a recipient, from, subject, content), stores the message in
  memory, answers `202 Accepted` with an `X-Message-Id` header, like SendGrid.
- `GET /messages` (optional `?to=addr`): what it received, JSON `{"messages": [...]}`, oldest
  first; each with `id`, `to`, `from`, `subject`, `text`, `html`, `custom_args`, `headers`,
  `categories`, `dedupe_key`.
- `DELETE /messages`: forget everything.
- `POST /control/fail-next` `{"count": 2, "status": 503}`: answer the next `count` sends with that
  status (nothing is stored), to exercise retries.
- `GET /healthz`.

`make serve` starts it when no `SENDGRID_API_KEY` is given and points `SENDGRID_HOST` at it; tests
run it in-process on a free port (`CaptureServer(port=0)`), and the real `sendgrid` client talks
HTTP to it.
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class CaptureState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.fail_next: list[int] = []  # statuses to answer, in order
        self.send_attempts = 0


def _text_of(content: list[dict[str, Any]], kind: str) -> str | None:
    for part in content:
        if part.get("type") == kind:
            return str(part.get("value", ""))
    return None


def _validate(body: Any) -> list[str]:
    errors: list[str] = []
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append("personalizations is required")
    else:
        for p in personalizations:
            if not isinstance(p, dict) or not p.get("to"):
                errors.append("personalizations[].to is required")
    if not isinstance(body.get("from"), dict) or not body["from"].get("email"):
        errors.append("from.email is required")
    if not body.get("subject") and not any(
        isinstance(p, dict) and p.get("subject") for p in personalizations or []
    ):
        errors.append("subject is required")
    content = body.get("content")
    if not isinstance(content, list) or not content:
        errors.append("content is required")
    return errors


def make_handler(state: CaptureState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "osmtalk-sendgrid-capture/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return None
            return json.loads(raw)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/healthz":
                self._json(200, {"status": "ok"})
                return
            if url.path == "/messages":
                to = parse_qs(url.query).get("to", [None])[0]
                with state.lock:
                    messages = [m for m in state.messages if to is None or to in m["to"]]
                    attempts = state.send_attempts
                self._json(200, {"messages": messages, "send_attempts": attempts})
                return
            self._json(404, {"errors": [{"message": "not found"}]})

        def do_DELETE(self) -> None:
            if urlparse(self.path).path == "/messages":
                with state.lock:
                    state.messages.clear()
                    state.send_attempts = 0
                self._empty(204)
                return
            self._json(404, {"errors": [{"message": "not found"}]})

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            try:
                body = self._body()
            except (ValueError, UnicodeDecodeError):
                self._json(400, {"errors": [{"message": "body is not JSON"}]})
                return
            if path == "/control/fail-next":
                body = body or {}
                count = int(body.get("count", 1))
                status = int(body.get("status", 503))
                with state.lock:
                    state.fail_next = [status] * count
                self._json(200, {"count": count, "status": status})
                return
            if path != "/v3/mail/send":
                self._json(404, {"errors": [{"message": "not found"}]})
                return
            with state.lock:
                state.send_attempts += 1
                failure = state.fail_next.pop(0) if state.fail_next else None
            if failure is not None:
                self._json(failure, {"errors": [{"message": f"injected {failure}"}]})
                return
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
                self._json(401, {"errors": [{"message": "authorization required"}]})
                return
            errors = _validate(body)
            if errors:
                self._json(400, {"errors": [{"message": e} for e in errors]})
                return
            message_id = uuid.uuid4().hex[:22]
            recipients = [
                str(to.get("email"))
                for p in body["personalizations"]
                for to in p.get("to", [])
                if isinstance(to, dict)
            ]
            custom_args: dict[str, Any] = dict(body.get("custom_args") or {})
            headers: dict[str, Any] = dict(body.get("headers") or {})
            for p in body["personalizations"]:
                custom_args.update(p.get("custom_args") or {})
                headers.update(p.get("headers") or {})
            record = {
                "id": message_id,
                "received_at": datetime.now(UTC).isoformat(),
                "to": recipients,
                "from": body["from"].get("email"),
                "subject": body.get("subject"),
                "text": _text_of(body["content"], "text/plain"),
                "html": _text_of(body["content"], "text/html"),
                "custom_args": custom_args,
                "headers": headers,
                "categories": list(body.get("categories") or []),
                "dedupe_key": custom_args.get("dedupe_key"),
            }
            with state.lock:
                state.messages.append(record)
            self._empty(202, {"X-Message-Id": message_id})

    return Handler


class CaptureServer:
    """The capture server on its own thread: `with CaptureServer() as server: server.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = CaptureState()
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.state))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{self.port}"

    def start(self) -> CaptureServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="sendgrid-capture", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(m) for m in self.state.messages if to is None or to in m["to"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local SendGrid v3 mail capture server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    server = CaptureServer(args.host, args.port)
    print(
        f"SendGrid capture server on {server.url} (POST /v3/mail/send, GET /messages)", flush=True
    )
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
