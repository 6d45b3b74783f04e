"""HTTP front of the Razorpay stand-in: Razorpay's API under `/v1` (Basic auth with the key id
and secret), the hosted checkout under `/checkout`, test controls under `/_standin`.

Routes are `(method, pattern, handler)`; a handler takes the request and the pattern's groups
and returns a `Reply`. Errors are `StandInError`s, answered in Razorpay's error shape.
"""

from __future__ import annotations

import base64
import hmac
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dev.razorpay import checkout_page
from dev.razorpay.controls import Controls
from dev.razorpay.entities import StandInError
from dev.razorpay.faults import Faults
from dev.razorpay.store import Store
from dev.razorpay.web import Handler, Reply, Request
from dev.razorpay.webhooks import WebhookDispatcher

MAX_BODY_BYTES = 1024 * 1024


class StandInApp:
    """Everything behind the HTTP server, callable in-process too (tests, the dev stack)."""

    def __init__(
        self,
        *,
        key_id: str,
        key_secret: str,
        webhooks: WebhookDispatcher,
        merchant: str = "osmTalk",
        refund_settle_seconds: float = 0.0,
    ) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.merchant = merchant
        self.webhooks = webhooks
        self.store = Store(
            key_secret, webhooks.publish, refund_settle_seconds=refund_settle_seconds
        )
        self.faults = Faults()
        self.requests: deque[dict[str, Any]] = deque(maxlen=1000)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._add_api_routes()
        self._add_checkout_routes()
        Controls(self).register()

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append(
            (method, re.compile(pattern.replace("{id}", "([A-Za-z0-9_]+)")), handler)
        )

    # Dispatch ---------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        fault = None
        if request.path.startswith("/v1/"):
            fault = self.faults.take(request.method, request.path)
        try:
            if fault is not None and fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault is not None and fault.status is not None and fault.when == "before":
                reply = self._fault_reply(fault.status)
            else:
                reply = self._dispatch(request)
                if fault is not None and fault.status is not None:
                    reply = self._fault_reply(fault.status)
        except StandInError as exc:
            reply = Reply.json(exc.payload, exc.status)
        if request.path.startswith("/v1/"):
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "status": reply.status,
                    "at": time.time(),
                    "idempotency_key": request.headers.get("x-refund-idempotency")
                    or request.headers.get("x-payout-idempotency"),
                    "fault": fault is not None,
                }
            )
        return reply

    def _fault_reply(self, status: int) -> Reply:
        code = "SERVER_ERROR" if status >= 500 else "BAD_REQUEST_ERROR"
        error = StandInError(
            status, "Injected fault (Razorpay stand-in).", code=code, reason="NA", source="NA"
        )
        return Reply.json(error.payload, status)

    def _dispatch(self, request: Request) -> Reply:
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                if request.path.startswith("/v1/"):
                    self._authenticate(request)
                return handler(request, *match.groups())
        raise StandInError(404, "The requested URL was not found on the server.", reason="NA")

    def _authenticate(self, request: Request) -> None:
        expected = base64.b64encode(f"{self.key_id}:{self.key_secret}".encode()).decode()
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Basic {expected}".encode()):
            raise StandInError(401, "Authentication failed", reason="NA", source="NA", step="NA")

    # Razorpay's API ---------------------------------------------------------------------
    def _add_api_routes(self) -> None:
        store = self.store
        get = self.store.get
        self.route("POST", "/v1/orders", lambda r: Reply.json(store.create_order(r.json())))
        self.route("GET", "/v1/orders/{id}", lambda r, i: Reply.json(get("orders", i)))
        self.route(
            "GET", "/v1/orders/{id}/payments", lambda r, i: Reply.json(store.order_payments(i))
        )
        self.route(
            "POST",
            "/v1/payments/create/recurring",
            lambda r: Reply.json(store.create_recurring(r.json())),
        )
        self.route("GET", "/v1/payments/{id}", lambda r, i: Reply.json(get("payments", i)))
        self.route(
            "POST",
            "/v1/payments/{id}/refund",
            lambda r, i: Reply.json(
                store.create_refund(i, r.json(), r.headers.get("x-refund-idempotency"))
            ),
        )
        self.route(
            "GET", "/v1/payments/{id}/refunds", lambda r, i: Reply.json(store.payment_refunds(i))
        )
        self.route("GET", "/v1/payments/{id}/refunds/{id}", self._payment_refund)
        self.route("GET", "/v1/refunds/{id}", lambda r, i: Reply.json(get("refunds", i)))
        self.route("POST", "/v1/customers", lambda r: Reply.json(store.create_customer(r.json())))
        self.route("GET", "/v1/customers/{id}", lambda r, i: Reply.json(get("customers", i)))
        self.route(
            "GET", "/v1/customers/{id}/tokens", lambda r, i: Reply.json(store.customer_tokens(i))
        )
        self.route(
            "POST",
            "/v1/payouts",
            lambda r: Reply.json(
                store.create_payout(r.json(), r.headers.get("x-payout-idempotency"))
            ),
        )
        self.route("GET", "/v1/payouts/{id}", lambda r, i: Reply.json(get("payouts", i)))

    def _payment_refund(self, request: Request, payment_id: str, refund_id: str) -> Reply:
        refund = self.store.get("refunds", refund_id)
        if refund["payment_id"] != payment_id:
            raise StandInError(400, "The id provided does not exist", reason="NA")
        return Reply.json(refund)

    # Hosted checkout --------------------------------------------------------------------
    def _add_checkout_routes(self) -> None:
        self.route("GET", "/checkout/{id}", self._checkout_page)
        self.route("POST", "/checkout/{id}/pay", self._checkout_pay)
        self.route("POST", "/checkout/{id}/fail", self._checkout_fail)

    def _checkout_page(self, request: Request, order_id: str) -> Reply:
        try:
            order = self.store.get("orders", order_id)
        except StandInError:
            return Reply.html("<!doctype html><title>Unknown order</title><p>Unknown order.", 404)
        page = checkout_page.render_checkout(
            order,
            merchant=self.merchant,
            callback_url=checkout_page.valid_callback(request.query.get("callback_url")),
            save_method=request.query.get("save_method") in ("1", "true"),
        )
        return Reply.html(page)

    def _checkout_done(
        self, request: Request, payment: dict[str, Any], signature: str | None
    ) -> Reply:
        callback = checkout_page.valid_callback(request.form().get("callback_url"))
        if callback:
            return Reply.redirect(checkout_page.callback_location(callback, payment, signature))
        return Reply.html(checkout_page.render_result(payment))

    def _checkout_pay(self, request: Request, order_id: str) -> Reply:
        save = request.form().get("save_method") in ("1", "on", "true")
        try:
            paid = self.store.pay_order(order_id, save_method=save)
        except StandInError as exc:
            return Reply.html(f"<!doctype html><title>Not paid</title><p>{exc}", exc.status)
        return self._checkout_done(request, paid["payment"], paid["razorpay_signature"])

    def _checkout_fail(self, request: Request, order_id: str) -> Reply:
        try:
            payment = self.store.fail_order(order_id)
        except StandInError as exc:
            return Reply.html(f"<!doctype html><title>Not failed</title><p>{exc}", exc.status)
        return self._checkout_done(request, payment, None)

    def reset(self) -> None:
        self.store.reset()
        self.faults.clear()
        self.webhooks.reset()
        self.requests.clear()


def make_handler(app: StandInApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "razorpay-standin/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                reply = Reply.json(StandInError(413, "Request body too large").payload, 413)
            else:
                raw = self.rfile.read(length) if length else b""
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = app.handle(Request(self.command, url.path, query, headers, raw))
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib's backlog of 5 drops connections when a test sends a burst of requests.
    request_queue_size = 128


class StandInServer:
    def __init__(self, app: StandInApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.httpd = _HTTPServer((host, port), make_handler(app))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.app.webhooks.start()
        # A short poll interval: stop() (shutdown) waits up to one interval.
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="razorpay-standin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.app.webhooks.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
