"""The Razorpay stand-in over real HTTP: signed webhooks (retries, duplicates, redelivery),
Basic auth, the test controls, and `python -m dev.razorpay` (the checkout page:
test_razorpay_checkout.py)."""

from __future__ import annotations

import time
from pathlib import Path

import razorpay

from adapters.payments.razorpay_signatures import verify_webhook_signature
from dev.procs import ChildProcess, free_port, python_command, wait_for_http
from dev.razorpay.standin import DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, RazorpayStandIn
from tests.support.razorpay import WEBHOOK_SECRET as SECRET
from tests.support.razorpay import Receiver, http, new_order, pay, sdk

REPO = Path(__file__).resolve().parents[2]


# Webhooks -----------------------------------------------------------------------------------
def test_webhooks_are_signed_and_shaped_like_razorpays(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    order = new_order(razorpay_standin)
    payment = pay(razorpay_standin, order["id"])["payment"]
    [captured] = webhook_receiver.wait_for("payment.captured")
    [order_paid] = webhook_receiver.wait_for("order.paid")
    time.sleep(0.3)  # nothing more arrives: no duplicates at probability 0
    assert [d.event["event"] for d in webhook_receiver.deliveries] == [
        "payment.authorized",
        "payment.captured",
        "order.paid",
    ]
    assert len({d.event_id for d in webhook_receiver.deliveries}) == 3
    for delivery in webhook_receiver.deliveries:
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


def test_webhooks_are_retried_until_a_2xx(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    statuses = {1: 500, 2: 404}
    webhook_receiver.status_for = lambda attempt: statuses.get(attempt, 204)
    pay(razorpay_standin, new_order(razorpay_standin)["id"])
    attempts = webhook_receiver.wait_for("order.paid", count=3)
    assert len({(d.event_id, d.body, d.headers["x-razorpay-signature"]) for d in attempts}) == 1
    razorpay_standin.wait_for_events(lambda events: events[0]["delivered"], event="order.paid")
    time.sleep(0.3)
    assert len(webhook_receiver.of("order.paid")) == 3  # the 2xx ended it
    log = http.get(
        f"{razorpay_standin.url}/_standin/webhooks", params={"event": "order.paid"}
    ).json()
    [record] = log["events"]
    assert record["delivered"] and not record["gave_up"]
    assert [(a["kind"], a["status"]) for a in record["attempts"]] == [
        ("delivery", 500),
        ("retry", 404),
        ("retry", 204),
    ]


def test_gives_up_after_the_last_retry_and_redelivers_on_request(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    webhook_receiver.status_for = lambda attempt: 503
    pay(razorpay_standin, new_order(razorpay_standin)["id"])
    [record] = razorpay_standin.wait_for_events(
        lambda events: bool(events) and events[0]["gave_up"], event="order.paid"
    )
    assert len(record["attempts"]) == 4  # the delivery and three retries
    webhook_receiver.status_for = lambda attempt: 200
    answer = http.post(f"{razorpay_standin.url}/_standin/webhooks/{record['id']}/redeliver")
    assert answer.status_code == 200
    assert len(webhook_receiver.wait_for("order.paid", count=5)) == 5
    [record] = razorpay_standin.wait_for_events(
        lambda events: events[0]["delivered"], event="order.paid"
    )  # the log is written once the answer is in
    assert [(a["kind"], a["status"]) for a in record["attempts"][-2:]] == [
        ("retry", 503),
        ("redelivery", 200),
    ]
    assert (
        http.post(f"{razorpay_standin.url}/_standin/webhooks/evt_Unknown/redeliver").status_code
        == 404
    )


def test_duplicates_when_asked(webhook_receiver: Receiver) -> None:
    with RazorpayStandIn(
        webhook_url=webhook_receiver.url, webhook_secret=SECRET, duplicate_probability=1.0
    ) as razorpay_standin:
        pay(razorpay_standin, new_order(razorpay_standin)["id"])
        deliveries = webhook_receiver.wait_for("order.paid", count=2)
        time.sleep(0.5)
    assert len(webhook_receiver.of("order.paid")) == 2
    assert deliveries[0].event_id == deliveries[1].event_id
    assert deliveries[0].body == deliveries[1].body
    for event in ("payment.authorized", "payment.captured"):
        assert len(webhook_receiver.of(event)) == 2


def test_events_can_be_forged_for_tests(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    entity = {"id": "pay_Forged00000001", "order_id": "order_Unknown0000001", "amount": 100}
    answer = http.post(
        f"{razorpay_standin.url}/_standin/webhooks/send",
        json={"event": "payment.captured", "payload": {"payment": entity}, "signature": "bad"},
    )
    assert answer.status_code == 200
    [delivery] = webhook_receiver.wait_for("payment.captured")
    assert delivery.event["payload"]["payment"]["entity"] == entity
    assert delivery.headers["x-razorpay-signature"] == "bad"
    assert not verify_webhook_signature(delivery.body, "bad", SECRET)


def test_refund_failure_control_leads_to_refund_failed(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    payment = pay(razorpay_standin, new_order(razorpay_standin)["id"])["payment"]
    http.post(
        f"{razorpay_standin.url}/_standin/fail-next", json={"kind": "refund"}
    ).raise_for_status()
    refund = sdk(razorpay_standin).payment.refund(payment["id"], {"amount": 50_000})
    assert refund["status"] == "pending"
    [failed] = webhook_receiver.wait_for("refund.failed")
    payload = failed.event["payload"]
    assert failed.event["contains"] == ["refund", "payment"]
    assert (payload["refund"]["entity"]["id"], payload["refund"]["entity"]["status"]) == (
        refund["id"],
        "failed",
    )
    assert payload["payment"]["entity"]["amount_refunded"] == 0
    assert webhook_receiver.of("refund.processed") == []


# API auth and controls ----------------------------------------------------------------------
def test_api_needs_the_key_id_and_secret(razorpay_standin: RazorpayStandIn) -> None:
    url = f"{razorpay_standin.url}/v1/orders/order_Unknown0000001"
    for auth in (
        None,
        (razorpay_standin.key_id, "wrong"),
        ("rzp_test_other", razorpay_standin.key_secret),
    ):
        denied = http.get(url, auth=auth)
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    unknown = http.get(url, auth=(razorpay_standin.key_id, razorpay_standin.key_secret))
    assert unknown.status_code == 400
    assert unknown.json()["error"]["description"] == "The id provided does not exist"


def test_fault_control_fails_the_next_requests_then_clears(
    razorpay_standin: RazorpayStandIn,
) -> None:
    auth = (razorpay_standin.key_id, razorpay_standin.key_secret)
    body = {"amount": 10_000, "currency": "INR", "receipt": "f"}
    fault = {"path": "/v1/orders", "method": "POST", "count": 2, "status": 503}
    assert http.post(f"{razorpay_standin.url}/_standin/faults", json=fault).status_code == 200
    statuses = [
        http.post(f"{razorpay_standin.url}/v1/orders", json=body, auth=auth) for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].json()["error"]["code"] == "SERVER_ERROR"
    assert len(razorpay_standin.store.orders) == 1  # "before" faults do nothing

    http.post(f"{razorpay_standin.url}/_standin/faults", json={**fault, "count": 5})
    http.delete(f"{razorpay_standin.url}/_standin/faults")
    assert http.get(f"{razorpay_standin.url}/_standin/faults").json() == {"faults": []}
    assert http.post(f"{razorpay_standin.url}/v1/orders", json=body, auth=auth).status_code == 200
    refused = http.post(f"{razorpay_standin.url}/_standin/faults", json={"path": "x", "count": 0})
    assert refused.status_code == 400


def test_webhook_target_can_be_set_after_start(webhook_receiver: Receiver) -> None:
    with RazorpayStandIn(duplicate_probability=0) as razorpay_standin:
        configured = http.post(
            f"{razorpay_standin.url}/_standin/config",
            json={"webhook_url": webhook_receiver.url, "webhook_secret": SECRET},
        ).json()
        assert (
            configured["webhook_url"] == webhook_receiver.url and configured["webhook_secret_set"]
        )
        pay(razorpay_standin, new_order(razorpay_standin)["id"])
        [paid] = webhook_receiver.wait_for("order.paid")
    assert verify_webhook_signature(paid.body, paid.headers["x-razorpay-signature"], SECRET)


# As a process -------------------------------------------------------------------------------
def test_runs_as_a_module_starts_fast_and_stops_on_sigterm(
    webhook_receiver: Receiver, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = python_command(
        "dev.razorpay",
        *("--port", str(port), "--webhook-url", webhook_receiver.url, "--webhook-secret", SECRET),
        *("--duplicate-probability", "0"),
    )
    razorpay_standin = ChildProcess(
        "razorpay-standin", command, log_path=tmp_path / "standin.log", cwd=REPO, stop_timeout=5
    )
    started = time.monotonic()
    with razorpay_standin:
        wait_for_http(f"{url}/healthz", timeout=10)
        startup = time.monotonic() - started
        assert startup < 1.5, f"started in {startup:.2f} s"

        client = razorpay.Client(auth=(DEFAULT_KEY_ID, DEFAULT_KEY_SECRET), base_url=url)
        order = client.order.create({"amount": 10_000, "currency": "INR", "receipt": "p"})
        http.post(f"{url}/_standin/orders/{order['id']}/pay", json={}).raise_for_status()
        [paid] = webhook_receiver.wait_for("order.paid")
        assert verify_webhook_signature(paid.body, paid.headers["x-razorpay-signature"], SECRET)
        assert razorpay_standin.stop(), "SIGTERM did not stop it"
    assert razorpay_standin.poll() == 0
    assert f"Razorpay stand-in on {url}" in razorpay_standin.tail()
