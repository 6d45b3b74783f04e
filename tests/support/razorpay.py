"""Test helpers for the Razorpay stand-in: a webhook receiver that records deliveries and answers
scripted statuses, fixtures (`webhook_receiver`, `razorpay_standin`) and a few shortcuts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import razorpay

from dev.razorpay.standin import RazorpayStandIn

WEBHOOK_SECRET = "whsec-standin-test"
# One client for all: a new httpx client per request costs ~0.2 s of CPU (TLS setup).
http = httpx.Client(timeout=10)


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event_id(self) -> str:
        return self.headers["x-razorpay-event-id"]


class Receiver:
    """A webhook endpoint that records every delivery and answers `status_for(attempt)` to the
    n-th delivery (1-based) of each event id."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.status_for: Callable[[int], int] = lambda attempt: 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delivery = Delivery({k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.deliveries.append(delivery)
                    attempt = sum(d.event_id == delivery.event_id for d in receiver.deliveries)
                self.send_response(receiver.status_for(attempt))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/webhooks/razorpay"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def of(self, event: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.event["event"] == event]

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.of(event)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{event}: {len(self.of(event))} of {count} deliveries")
            time.sleep(0.02)
        return self.of(event)


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def razorpay_standin(webhook_receiver: Receiver) -> Iterator[RazorpayStandIn]:
    """The stand-in delivering to `webhook_receiver`, no duplicates, retries 50 ms apart."""
    with RazorpayStandIn(
        webhook_url=webhook_receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        duplicate_probability=0,
        retry_delays=(0.05, 0.05, 0.05),
    ) as server:
        yield server


def sdk(standin: RazorpayStandIn) -> razorpay.Client:
    return razorpay.Client(auth=(standin.key_id, standin.key_secret), base_url=standin.url)


def new_order(standin: RazorpayStandIn, amount_paisa: int = 150_000) -> dict[str, Any]:
    order: dict[str, Any] = sdk(standin).order.create(
        {"amount": amount_paisa, "currency": "INR", "receipt": "chk-1", "notes": {"a": "b"}}
    )
    return order


def pay(standin: RazorpayStandIn, order_id: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"{standin.url}/_standin/orders/{order_id}/pay", json=body)
    response.raise_for_status()
    paid: dict[str, Any] = response.json()
    return paid
