"""The Razorpay stand-in over real HTTP: signed webhooks (retries, duplicates, redelivery), the
hosted checkout page, Basic auth, the test controls, and `python -m dev.razorpay`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import razorpay

from adapters.payments.razorpay_signatures import (
    verify_payment_signature,
    verify_webhook_signature,
)
from dev.procs import ChildProcess, free_port, python_command, wait_for_http
from dev.razorpay.standin import DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, RazorpayStandIn

SECRET = "whsec-standin-test"
REPO = Path(__file__).resolve().parents[2]
# One client for the file: a new httpx client per request costs ~0.2 s of CPU (TLS setup).
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
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def standin(receiver: Receiver) -> Iterator[RazorpayStandIn]:
    with RazorpayStandIn(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
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


# Webhooks -----------------------------------------------------------------------------------
def test_webhooks_are_signed_and_shaped_like_razorpays(
    standin: RazorpayStandIn, receiver: Receiver
) -> None:
    order = new_order(standin)
    payment = pay(standin, order["id"])["payment"]
    [captured] = receiver.wait_for("payment.captured")
    [order_paid] = receiver.wait_for("order.paid")
    time.sleep(0.3)  # nothing more arrives: no duplicates at probability 0
    assert [d.event["event"] for d in receiver.deliveries] == [
        "payment.authorized",
        "payment.captured",
        "order.paid",
    ]
    assert len({d.event_id for d in receiver.deliveries}) == 3
    for delivery in receiver.deliveries:
        assert delivery.event_id.startswith("evt_")
        assert delivery.headers["content-type"] == "application/json"
        signature = delivery.headers["x-razorpay-signature"]
        assert verify_webhook_signature(delivery.body, signature, SECRET)
        assert not verify_webhook_signature(delivery.body, signature, "other-secret")
        event = delivery.event
        assert event["entity"] == "event" and event["account_id"].startswith("acc_")
        assert event["contains"] == list(event["payload"]) and isinstance(event["created_at"], int)
    entity = captured.event["payload"]["payment"]["entity"]
    assert entity["id"] == payment["id"] and entity["order_id"] == order["id"]
    assert (entity["amount"], entity["currency"], entity["status"]) == (150_000, "INR", "captured")
    assert order_paid.event["contains"] == ["payment", "order"]
    paid_order = order_paid.event["payload"]["order"]["entity"]
    assert (paid_order["id"], paid_order["status"], paid_order["amount_paid"]) == (
        order["id"],
        "paid",
        150_000,
    )


def test_webhooks_are_retried_until_a_2xx(standin: RazorpayStandIn, receiver: Receiver) -> None:
    statuses = {1: 500, 2: 404}
    receiver.status_for = lambda attempt: statuses.get(attempt, 204)
    pay(standin, new_order(standin)["id"])
    attempts = receiver.wait_for("order.paid", count=3)
    assert len({(d.event_id, d.body, d.headers["x-razorpay-signature"]) for d in attempts}) == 1
    standin.wait_for_events(lambda events: events[0]["delivered"], event="order.paid")
    time.sleep(0.3)
    assert len(receiver.of("order.paid")) == 3  # the 2xx ended it
    log = http.get(f"{standin.url}/_standin/webhooks", params={"event": "order.paid"}).json()
    [record] = log["events"]
    assert record["delivered"] and not record["gave_up"]
    assert [(a["kind"], a["status"]) for a in record["attempts"]] == [
        ("delivery", 500),
        ("retry", 404),
        ("retry", 204),
    ]


def test_gives_up_after_the_last_retry_and_redelivers_on_request(
    standin: RazorpayStandIn, receiver: Receiver
) -> None:
    receiver.status_for = lambda attempt: 503
    pay(standin, new_order(standin)["id"])
    [record] = standin.wait_for_events(
        lambda events: bool(events) and events[0]["gave_up"], event="order.paid"
    )
    assert len(record["attempts"]) == 4  # the delivery and three retries
    receiver.status_for = lambda attempt: 200
    answer = http.post(f"{standin.url}/_standin/webhooks/{record['id']}/redeliver")
    assert answer.status_code == 200
    assert len(receiver.wait_for("order.paid", count=5)) == 5
    [record] = standin.wait_for_events(
        lambda events: events[0]["delivered"], event="order.paid"
    )  # the log is written once the answer is in
    assert [(a["kind"], a["status"]) for a in record["attempts"][-2:]] == [
        ("retry", 503),
        ("redelivery", 200),
    ]
    assert http.post(f"{standin.url}/_standin/webhooks/evt_Unknown/redeliver").status_code == 404


def test_duplicates_when_asked(receiver: Receiver) -> None:
    with RazorpayStandIn(
        webhook_url=receiver.url, webhook_secret=SECRET, duplicate_probability=1.0
    ) as standin:
        pay(standin, new_order(standin)["id"])
        deliveries = receiver.wait_for("order.paid", count=2)
        time.sleep(0.5)
    assert len(receiver.of("order.paid")) == 2
    assert deliveries[0].event_id == deliveries[1].event_id
    assert deliveries[0].body == deliveries[1].body
    for event in ("payment.authorized", "payment.captured"):
        assert len(receiver.of(event)) == 2


def test_events_can_be_forged_for_tests(standin: RazorpayStandIn, receiver: Receiver) -> None:
    entity = {"id": "pay_Forged00000001", "order_id": "order_Unknown0000001", "amount": 100}
    answer = http.post(
        f"{standin.url}/_standin/webhooks/send",
        json={"event": "payment.captured", "payload": {"payment": entity}, "signature": "bad"},
    )
    assert answer.status_code == 200
    [delivery] = receiver.wait_for("payment.captured")
    assert delivery.event["payload"]["payment"]["entity"] == entity
    assert delivery.headers["x-razorpay-signature"] == "bad"
    assert not verify_webhook_signature(delivery.body, "bad", SECRET)


def test_refund_failure_control_leads_to_refund_failed(
    standin: RazorpayStandIn, receiver: Receiver
) -> None:
    payment = pay(standin, new_order(standin)["id"])["payment"]
    http.post(f"{standin.url}/_standin/fail-next", json={"kind": "refund"}).raise_for_status()
    refund = sdk(standin).payment.refund(payment["id"], {"amount": 50_000})
    assert refund["status"] == "pending"
    [failed] = receiver.wait_for("refund.failed")
    payload = failed.event["payload"]
    assert failed.event["contains"] == ["refund", "payment"]
    assert (payload["refund"]["entity"]["id"], payload["refund"]["entity"]["status"]) == (
        refund["id"],
        "failed",
    )
    assert payload["payment"]["entity"]["amount_refunded"] == 0
    assert receiver.of("refund.processed") == []


# Hosted checkout ----------------------------------------------------------------------------
class FormReader(HTMLParser):
    """The checkout form as a browser sees it: action, fields a submit sends, buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}  # label -> formaction (or the form's action)
        self.tags: set[str] = set()
        self._button: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name"):
            if values.get("type") != "checkbox" or "checked" in values:
                self.fields[str(values["name"])] = values.get("value") or "on"
        elif tag == "button":
            self._button = values

    def handle_data(self, data: str) -> None:
        if self._button is not None and data.strip():
            self.buttons[data.strip()] = self._button.get("formaction") or self.action
            self._button = None


def read_checkout(standin: RazorpayStandIn, order_id: str, **query: str) -> FormReader:
    page = http.get(f"{standin.url}/checkout/{order_id}", params=query)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    reader = FormReader()
    reader.feed(page.text)
    assert not reader.tags & {"script", "link", "img", "iframe"}  # nothing external to load
    return reader


def test_checkout_page_pay_button_pays_and_redirects_back(
    standin: RazorpayStandIn, receiver: Receiver
) -> None:
    order = new_order(standin)
    callback = "http://127.0.0.1:9/billing?checkout=chk-1"
    form = read_checkout(standin, order["id"], callback_url=callback, save_method="1")
    assert set(form.buttons) == {"Pay", "Fail"}
    assert form.fields == {"callback_url": callback, "save_method": "1"}
    page = http.get(f"{standin.url}/checkout/{order['id']}").text
    assert "₹1,500.00" in page and order["id"] in page

    clicked = http.post(standin.url + form.buttons["Pay"], data=form.fields)
    assert clicked.status_code == 303
    location = urlsplit(clicked.headers["location"])
    assert location.netloc == "127.0.0.1:9" and location.path == "/billing"
    back = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert back["checkout"] == "chk-1" and back["razorpay_order_id"] == order["id"]
    assert verify_payment_signature(
        order["id"], back["razorpay_payment_id"], back["razorpay_signature"], standin.key_secret
    )
    [captured] = receiver.wait_for("payment.captured")
    payment = captured.event["payload"]["payment"]["entity"]
    assert payment["id"] == back["razorpay_payment_id"] and payment["amount"] == 150_000
    assert payment["token_id"].startswith("token_")  # "save this card" was ticked
    [paid] = receiver.wait_for("order.paid")
    assert paid.event["payload"]["order"]["entity"]["status"] == "paid"

    again = read_checkout(standin, order["id"])
    assert again.buttons == {}  # a paid order offers nothing to click


def test_checkout_page_fail_button_then_pay(standin: RazorpayStandIn, receiver: Receiver) -> None:
    order = new_order(standin)
    callback = "http://127.0.0.1:9/billing"
    form = read_checkout(standin, order["id"], callback_url=callback)
    assert "save_method" not in form.fields
    clicked = http.post(standin.url + form.buttons["Fail"], data=form.fields)
    assert clicked.status_code == 303
    back = {k: v[0] for k, v in parse_qs(urlsplit(clicked.headers["location"]).query).items()}
    assert back["error[code]"] == "BAD_REQUEST_ERROR" and back["error[reason]"]
    [failed] = receiver.wait_for("payment.failed")
    entity = failed.event["payload"]["payment"]["entity"]
    assert json.loads(back["error[metadata]"]) == {
        "payment_id": entity["id"],
        "order_id": order["id"],
    }
    assert entity["status"] == "failed"
    assert sdk(standin).order.fetch(order["id"])["status"] == "attempted"

    # The customer tries again on the same order, without a callback: a result page.
    form = read_checkout(standin, order["id"])
    result = http.post(standin.url + form.buttons["Pay"], data=form.fields)
    assert result.status_code == 200 and "Payment successful" in result.text
    receiver.wait_for("order.paid")
    [captured] = receiver.of("payment.captured")
    assert captured.event["payload"]["payment"]["entity"]["token_id"] is None  # not ticked


def test_checkout_ignores_callbacks_that_are_not_http(standin: RazorpayStandIn) -> None:
    order = new_order(standin)
    form = read_checkout(standin, order["id"], callback_url="javascript:alert(1)")
    assert "callback_url" not in form.fields
    assert http.get(f"{standin.url}/checkout/order_Unknown0000001").status_code == 404


# API auth and controls ----------------------------------------------------------------------
def test_api_needs_the_key_id_and_secret(standin: RazorpayStandIn) -> None:
    url = f"{standin.url}/v1/orders/order_Unknown0000001"
    for auth in (None, (standin.key_id, "wrong"), ("rzp_test_other", standin.key_secret)):
        denied = http.get(url, auth=auth)
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    unknown = http.get(url, auth=(standin.key_id, standin.key_secret))
    assert unknown.status_code == 400
    assert unknown.json()["error"]["description"] == "The id provided does not exist"


def test_fault_control_fails_the_next_requests_then_clears(standin: RazorpayStandIn) -> None:
    auth = (standin.key_id, standin.key_secret)
    body = {"amount": 10_000, "currency": "INR", "receipt": "f"}
    fault = {"path": "/v1/orders", "method": "POST", "count": 2, "status": 503}
    assert http.post(f"{standin.url}/_standin/faults", json=fault).status_code == 200
    statuses = [http.post(f"{standin.url}/v1/orders", json=body, auth=auth) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].json()["error"]["code"] == "SERVER_ERROR"
    assert len(standin.store.orders) == 1  # "before" faults do nothing

    http.post(f"{standin.url}/_standin/faults", json={**fault, "count": 5})
    http.delete(f"{standin.url}/_standin/faults")
    assert http.get(f"{standin.url}/_standin/faults").json() == {"faults": []}
    assert http.post(f"{standin.url}/v1/orders", json=body, auth=auth).status_code == 200
    refused = http.post(f"{standin.url}/_standin/faults", json={"path": "x", "count": 0})
    assert refused.status_code == 400


def test_webhook_target_can_be_set_after_start(receiver: Receiver) -> None:
    with RazorpayStandIn(duplicate_probability=0) as standin:
        configured = http.post(
            f"{standin.url}/_standin/config",
            json={"webhook_url": receiver.url, "webhook_secret": SECRET},
        ).json()
        assert configured["webhook_url"] == receiver.url and configured["webhook_secret_set"]
        pay(standin, new_order(standin)["id"])
        [paid] = receiver.wait_for("order.paid")
    assert verify_webhook_signature(paid.body, paid.headers["x-razorpay-signature"], SECRET)


# As a process -------------------------------------------------------------------------------
def test_runs_as_a_module_starts_fast_and_stops_on_sigterm(
    receiver: Receiver, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = python_command(
        "dev.razorpay",
        *("--port", str(port), "--webhook-url", receiver.url, "--webhook-secret", SECRET),
        *("--duplicate-probability", "0"),
    )
    standin = ChildProcess(
        "razorpay-standin", command, log_path=tmp_path / "standin.log", cwd=REPO, stop_timeout=5
    )
    started = time.monotonic()
    with standin:
        wait_for_http(f"{url}/healthz", timeout=10)
        startup = time.monotonic() - started
        assert startup < 1.5, f"started in {startup:.2f} s"

        client = razorpay.Client(auth=(DEFAULT_KEY_ID, DEFAULT_KEY_SECRET), base_url=url)
        order = client.order.create({"amount": 10_000, "currency": "INR", "receipt": "p"})
        http.post(f"{url}/_standin/orders/{order['id']}/pay", json={}).raise_for_status()
        [paid] = receiver.wait_for("order.paid")
        assert verify_webhook_signature(paid.body, paid.headers["x-razorpay-signature"], SECRET)
        assert standin.stop(), "SIGTERM did not stop it"
    assert standin.poll() == 0
    assert f"Razorpay stand-in on {url}" in standin.tail()
