"""The billing stack wired to a Razorpay stand-in, for tests of money in: the API and the worker
get the stand-in's keys and URL, the stand-in sends its signed webhooks to the API.

    with payments_stack(database_url, temporal_address) as (stack, standin): ...

Its own task queue keeps its workflows away from any other stack on the same Temporal server."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from dev.razorpay.devstack import STANDIN_FUND_ACCOUNT_ID, STANDIN_PAYOUT_ACCOUNT_NUMBER
from dev.razorpay.standin import RazorpayStandIn
from tests.support.stack import RunningStack, start_stack

WEBHOOK_SECRET = "whsec-payments-test"


@dataclass
class PaymentsStack:
    stack: RunningStack
    standin: RazorpayStandIn
    task_queue: str

    @property
    def webhook_url(self) -> str:
        return f"{self.stack.base_url}/v1/webhooks/razorpay"

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST to the stand-in's `/_standin` controls."""
        response = httpx.post(f"{self.standin.url}/_standin/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@contextlib.contextmanager
def payments_stack(
    database_url: str, temporal_address: str, *, settings: dict[str, Any] | None = None
) -> Iterator[PaymentsStack]:
    task_queue = f"billing-payments-{uuid.uuid4().hex[:8]}"
    with RazorpayStandIn(
        webhook_secret=WEBHOOK_SECRET, duplicate_probability=0, retry_delays=(0.2, 0.5, 1.0, 2.0)
    ) as standin:
        razorpay = {
            "razorpay_key_id": standin.key_id,
            "razorpay_key_secret": standin.key_secret,
            "razorpay_webhook_secret": WEBHOOK_SECRET,
            "razorpay_api_url": standin.url,
            "razorpay_timeout_seconds": 2,  # a hung gateway is a quick 503
            "razorpayx_account_number": STANDIN_PAYOUT_ACCOUNT_NUMBER,
            "refund_payout_fund_account_id": STANDIN_FUND_ACCOUNT_ID,
        }
        worker_env = {key.upper(): str(value) for key, value in razorpay.items()}
        with start_stack(
            database_url,
            temporal_address,
            settings={**razorpay, **(settings or {})},
            worker_env=worker_env,
            task_queue=task_queue,
        ) as stack:
            running = PaymentsStack(stack, standin, task_queue)
            running.control("config", {"webhook_url": running.webhook_url})
            warm_up(running)
            yield running


def warm_up(running: PaymentsStack, timeout: float = 60.0) -> None:
    """One checkout paid end to end before the tests: the worker process has started, polls,
    and has imported its workflows, so the tests measure a running stack, not its start-up."""
    with running.stack.client(running.stack.admin_key) as http:
        created = http.post("/v1/accounts", json={"name": "Warm-up", "email": "w@warm.example"})
        account_id = created.json()["account"]["id"]
        key = created.json()["api_key"]["key"]
        order = http.post(
            f"/v1/accounts/{account_id}/checkouts",
            json={"amount_paisa": 10_000},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert order.status_code == 201, order.text
        running.control(f"orders/{order.json()['order_id']}/pay")
        eventually(
            lambda: http.get(f"/v1/accounts/{account_id}/balance").json()["paid_paisa"] == 10_000,
            timeout=timeout,
            every=0.2,
        )


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, every: float = 0.1) -> Any:
    """`check()`'s first truthy result, or AssertionError with the last one after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last: {result!r})")
        time.sleep(every)
