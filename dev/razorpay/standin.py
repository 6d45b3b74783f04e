"""A local stand-in for Razorpay (API, hosted checkout, webhooks), for development and tests.

    python -m dev.razorpay --port 8790 --webhook-url http://127.0.0.1:8000/v1/webhooks/razorpay \\
        --webhook-secret S [--key-id K --key-secret KS --duplicate-probability 0.1]

It follows Razorpay's documented request and response shapes, so the adapter talks to it through
the official SDK with only `RAZORPAY_API_URL` changed. In tests, run it in-process on a free
port: `with RazorpayStandIn(webhook_url=...) as standin: standin.url`. docs/payments.md lists
the endpoints and the `/_standin` test controls.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from dev.razorpay.server import StandInApp, StandInServer
from dev.razorpay.webhooks import DEFAULT_RETRY_DELAYS, WebhookDispatcher

DEFAULT_KEY_ID = "rzp_test_StandInKey0001"
DEFAULT_KEY_SECRET = "standin-key-secret"
DEFAULT_WEBHOOK_SECRET = "standin-webhook-secret"


class RazorpayStandIn:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        key_id: str = DEFAULT_KEY_ID,
        key_secret: str = DEFAULT_KEY_SECRET,
        webhook_url: str | None = None,
        webhook_secret: str | None = DEFAULT_WEBHOOK_SECRET,
        duplicate_probability: float = 0.1,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        refund_settle_seconds: float = 0.0,
        merchant: str = "osmTalk",
        seed: int | None = None,
    ) -> None:
        self.webhooks = WebhookDispatcher(
            webhook_url,
            webhook_secret,
            duplicate_probability=duplicate_probability,
            retry_delays=retry_delays,
            seed=seed,
        )
        self.app = StandInApp(
            key_id=key_id,
            key_secret=key_secret,
            webhooks=self.webhooks,
            merchant=merchant,
            refund_settle_seconds=refund_settle_seconds,
        )
        self.store = self.app.store
        self.faults = self.app.faults
        self.server = StandInServer(self.app, host, port)
        self.key_id = key_id
        self.key_secret = key_secret

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> RazorpayStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> RazorpayStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def checkout_url(
        self, order_id: str, *, callback_url: str | None = None, save_method: bool = False
    ) -> str:
        query = {"callback_url": callback_url} if callback_url else {}
        if save_method:
            query["save_method"] = "1"
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.url}/checkout/{order_id}{suffix}"

    def wait_for_events(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        *,
        event: str | None = None,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll the delivery log until `predicate(events)` holds; the events, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.webhooks.events(event)
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"webhook events never satisfied the condition: {events!r:.2000}"
                )
            time.sleep(0.02)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local stand-in for Razorpay's API and checkout")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--key-id", default=DEFAULT_KEY_ID)
    parser.add_argument("--key-secret", default=DEFAULT_KEY_SECRET)
    parser.add_argument("--webhook-url", default=None, help="where to POST signed webhooks")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    parser.add_argument("--duplicate-probability", type=float, default=0.1)
    parser.add_argument("--refund-settle-seconds", type=float, default=0.0)
    parser.add_argument("--merchant", default="osmTalk")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    standin = RazorpayStandIn(
        args.host,
        args.port,
        key_id=args.key_id,
        key_secret=args.key_secret,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        duplicate_probability=args.duplicate_probability,
        refund_settle_seconds=args.refund_settle_seconds,
        merchant=args.merchant,
    ).start()
    print(
        f"Razorpay stand-in on {standin.url} (key id {standin.key_id}; "
        f"webhooks to {args.webhook_url or 'nowhere yet'})",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        standin.stop()
