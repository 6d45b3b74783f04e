"""Webhook delivery like Razorpay's: signed, retried until a 2xx, sometimes delivered twice.

Each event is the envelope `{"entity": "event", "account_id", "event", "contains", "payload":
{name: {"entity": {...}}}, "created_at"}`, POSTed with `X-Razorpay-Signature` (hex HMAC-SHA256
of the exact body with the webhook secret) and `X-Razorpay-Event-Id`. One background thread
sends due deliveries in time order, so a failing receiver delays only its own retries. After a
2xx, with probability `duplicate_probability`, the same event (same id, same bytes) is sent once
more, as Razorpay may do.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from adapters.payments.razorpay_signatures import webhook_signature
from dev.razorpay.entities import new_id, now

DEFAULT_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is not a 2xx: Razorpay does not follow redirects either."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects())


@dataclass
class Attempt:
    kind: str  # delivery | retry | duplicate | redelivery
    at: float
    status: int | None
    error: str | None


@dataclass
class WebhookEvent:
    id: str
    event: str
    body: bytes
    signature_override: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event,
            "delivered": self.delivered,
            "gave_up": self.gave_up,
            "attempts": [vars(attempt) for attempt in self.attempts],
            "payload": json.loads(self.body),
        }


class WebhookDispatcher:
    def __init__(
        self,
        url: str | None,
        secret: str | None,
        *,
        account_id: str = "acc_StandIn0000001",
        duplicate_probability: float = 0.1,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        timeout_seconds: float = 5.0,
        seed: int | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.account_id = account_id
        self.duplicate_probability = duplicate_probability
        self.retry_delays = retry_delays
        self.timeout_seconds = timeout_seconds
        self._random = random.Random(seed)
        self._events: dict[str, WebhookEvent] = {}
        self._order: list[str] = []
        self._due: list[tuple[float, int, str, str, int]] = []  # (when, seq, id, kind, attempt)
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="razorpay-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout_seconds + 1)

    def reset(self) -> None:
        with self._cond:
            self._events.clear()
            self._order.clear()
            self._due.clear()

    # Publishing -------------------------------------------------------------------------
    def publish(
        self,
        event: str,
        entities: dict[str, dict[str, Any]],
        *,
        signature_override: str | None = None,
    ) -> WebhookEvent:
        envelope = {
            "entity": "event",
            "account_id": self.account_id,
            "event": event,
            "contains": list(entities),
            "payload": {name: {"entity": entity} for name, entity in entities.items()},
            "created_at": now(),
        }
        record = WebhookEvent(
            id=new_id("evt"),
            event=event,
            body=json.dumps(envelope, separators=(",", ":")).encode(),
            signature_override=signature_override,
        )
        with self._cond:
            self._events[record.id] = record
            self._order.append(record.id)
            self._schedule(record.id, "delivery", 0, 0.0)
        return record

    def redeliver(self, event_id: str) -> WebhookEvent | None:
        with self._cond:
            record = self._events.get(event_id)
            if record is not None:
                record.gave_up = False
                self._schedule(event_id, "redelivery", 0, 0.0)
            return record

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            records = [self._events[i] for i in self._order]
            return [r.as_json() for r in records if event is None or r.event == event]

    def _schedule(self, event_id: str, kind: str, attempt: int, delay: float) -> None:
        heapq.heappush(
            self._due, (time.monotonic() + delay, next(self._seq), event_id, kind, attempt)
        )
        self._cond.notify_all()

    # Delivery ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, event_id, kind, attempt = heapq.heappop(self._due)
                record = self._events.get(event_id)
                url, secret = self.url, self.secret
            if record is not None:
                self._deliver(record, kind, attempt, url, secret)

    def _deliver(
        self, record: WebhookEvent, kind: str, attempt: int, url: str | None, secret: str | None
    ) -> None:
        status, error = self._post(record, url, secret)
        ok = status is not None and 200 <= status < 300
        with self._cond:
            record.attempts.append(Attempt(kind, time.time(), status, error))
            if ok:
                record.delivered = True
                if kind != "duplicate" and self._random.random() < self.duplicate_probability:
                    self._schedule(record.id, "duplicate", 0, self._random.uniform(0.05, 0.3))
            elif kind == "duplicate" or url is None:
                pass  # a duplicate is best effort; with no receiver, wait for a redelivery
            elif attempt < len(self.retry_delays):
                self._schedule(record.id, "retry", attempt + 1, self.retry_delays[attempt])
            else:
                record.gave_up = True

    def _post(
        self, record: WebhookEvent, url: str | None, secret: str | None
    ) -> tuple[int | None, str | None]:
        if not url:
            return None, "no webhook URL configured"
        signature = record.signature_override
        if signature is None:
            signature = webhook_signature(record.body, secret or "")
        request = urllib.request.Request(
            url,
            data=record.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Razorpay-Webhook/v1 (osmTalk stand-in)",
                "X-Razorpay-Signature": signature,
                "X-Razorpay-Event-Id": record.id,
            },
        )
        try:
            with _opener.open(request, timeout=self.timeout_seconds) as response:
                response.read()
                return int(response.status), None
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code), None
        except (urllib.error.URLError, OSError) as exc:
            return None, str(exc)
