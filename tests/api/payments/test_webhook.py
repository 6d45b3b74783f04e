"""`POST /v1/webhooks/razorpay`: signatures, every event type, duplicates and 20 concurrent
deliveries of one payment (credited once), out-of-order events, and payments kept for support
when they match no checkout."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from adapters.payments.razorpay_signatures import webhook_signature
from db.payment_models import GatewayEvent, GatewayPayment
from ledger.invariants import check_ledger
from tests.api.conftest import Account
from tests.api.payments.conftest import (
    balance,
    checkout,
    checkout_status,
    send_event,
    topups,
    wait_paid,
)
from tests.support.payments import WEBHOOK_SECRET, PaymentsStack, eventually


def envelope(event: str, **entities: dict[str, Any]) -> bytes:
    body = {
        "entity": "event",
        "account_id": "acc_StandIn",
        "event": event,
        "contains": list(entities),
        "payload": {name: {"entity": entity} for name, entity in entities.items()},
        "created_at": int(time.time()),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def payment_entity(
    order_id: str, amount: int, *, status: str = "captured", currency: str = "INR", **extra: Any
) -> dict[str, Any]:
    return {
        "id": f"pay_{uuid.uuid4().hex[:14]}",
        "entity": "payment",
        "amount": amount,
        "currency": currency,
        "status": status,
        "order_id": order_id,
        "method": "card",
        "captured": status == "captured",
        "notes": {},
        **extra,
    }


def signed(pay: PaymentsStack, raw: bytes, event_id: str | None = None) -> Any:
    return send_event(pay, raw, webhook_signature(raw, WEBHOOK_SECRET), event_id)


def events_count(pay: PaymentsStack) -> int:
    with pay.stack.api.app.state.billing.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(GatewayEvent)) or 0)


def stored_event(pay: PaymentsStack, row_id: int) -> GatewayEvent:
    with pay.stack.api.app.state.billing.session_factory() as session:
        event = session.get(GatewayEvent, row_id)
        assert event is not None
        return event


def disposition_of(pay: PaymentsStack, row_id: int) -> str | None:
    return stored_event(pay, row_id).disposition


def test_missing_or_wrong_signature_is_400_and_changes_nothing(
    pay: PaymentsStack, customer: Account
) -> None:
    created = checkout(pay, customer, 100_000)
    raw = envelope("payment.captured", payment=payment_entity(created["order_id"], 100_000))
    before = events_count(pay)
    for signature in (None, "", "0" * 64, webhook_signature(raw, "another-secret")):
        response = send_event(pay, raw, signature)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_signature"
    # A valid signature over other bytes (re-serialised JSON) is wrong too.
    pretty = json.dumps(json.loads(raw), indent=2).encode()
    assert send_event(pay, pretty, webhook_signature(raw, WEBHOOK_SECRET)).status_code == 400
    time.sleep(0.5)
    assert events_count(pay) == before
    assert balance(pay, customer)["paid_paisa"] == 0
    assert checkout_status(pay, customer, created["checkout_id"]) == "created"


def test_captured_and_order_paid_and_redeliveries_credit_once(
    pay: PaymentsStack, customer: Account
) -> None:
    created = checkout(pay, customer, 100_000)
    paid = pay.control(f"orders/{created['order_id']}/pay")
    payment_id = paid["payment"]["id"]
    wait_paid(pay, customer, 100_000)
    events = pay.standin.wait_for_events(
        lambda evs: (
            len(
                # Other tests' refund and payout events share the stand-in: not all have a payment.
                [e for e in evs if payment_of(e) == payment_id]
            )
            >= 3
        )
    )
    names = {e["event"] for e in events if payment_of(e) == payment_id}
    assert {"payment.authorized", "payment.captured", "order.paid"} <= names
    for event in events:
        pay.control(f"webhooks/{event['id']}/redeliver")
    time.sleep(2)
    assert balance(pay, customer)["paid_paisa"] == 100_000
    assert [t["reference"] for t in topups(pay, customer)] == [payment_id]
    with pay.stack.api.app.state.billing.session_factory() as session:
        rows = session.scalars(select(GatewayEvent).where(GatewayEvent.payment_id == payment_id))
        by_event = {row.event: row for row in rows}
        payment = session.get(GatewayPayment, payment_id)
    assert by_event["payment.authorized"].disposition == "ignored"
    dispositions = {by_event["payment.captured"].disposition, by_event["order.paid"].disposition}
    assert dispositions == {"credited", "already_credited"}
    assert all(row.deliveries >= 2 for row in by_event.values())
    assert payment is not None and payment.status == "captured"
    assert payment.amount_paisa == 100_000 and payment.refunded_paisa == 0
    assert payment.checkout_id == created["checkout_id"]


def test_twenty_concurrent_deliveries_of_one_payment_credit_once(
    pay: PaymentsStack, customer: Account
) -> None:
    created = checkout(pay, customer, 250_000)
    payment = payment_entity(created["order_id"], 250_000)
    same = envelope("payment.captured", payment=payment)
    order = {"id": created["order_id"], "entity": "order", "amount": 250_000, "status": "paid"}
    # 10 deliveries of one event (one event id) and 10 distinct events for the same payment.
    bodies = [(same, "evt_same_" + created["order_id"])] * 10 + [
        (envelope("order.paid", payment=payment, order=order), f"evt_{i}_{uuid.uuid4().hex}")
        for i in range(10)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda b: signed(pay, b[0], b[1]), bodies))
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
    wait_paid(pay, customer, 250_000)
    time.sleep(1.5)
    assert balance(pay, customer)["paid_paisa"] == 250_000
    assert len(topups(pay, customer)) == 1
    assert checkout_status(pay, customer, created["checkout_id"]) == "paid"
    with pay.stack.api.app.state.billing.session_factory() as session:
        rows = session.scalars(
            select(GatewayEvent).where(GatewayEvent.payment_id == payment["id"])
        ).all()
    assert len(rows) == 11  # one row per event id; its repeats counted as deliveries
    assert sum(r.deliveries for r in rows) == 20
    assert eventually(lambda: all(stored_event(pay, r.id).status == "processed" for r in rows))
    dispositions = sorted(stored_event(pay, r.id).disposition or "" for r in rows)
    assert dispositions == ["already_credited"] * 10 + ["credited"]
    with pay.stack.api.app.state.billing.session_factory() as session:
        assert check_ledger(session, [customer.id]) == []


def test_out_of_order_events(pay: PaymentsStack, customer: Account) -> None:
    created = checkout(pay, customer, 120_000)
    payment = payment_entity(created["order_id"], 120_000)
    order = {"id": created["order_id"], "entity": "order", "amount": 120_000, "status": "paid"}
    # order.paid first, then a stale payment.failed of an earlier attempt, then captured.
    started = time.monotonic()
    assert signed(pay, envelope("order.paid", payment=payment, order=order)).status_code == 200
    assert time.monotonic() - started < 1.0  # recorded and handed over, not processed inline
    wait_paid(pay, customer, 120_000, timeout=2)
    failed = payment_entity(
        created["order_id"], 120_000, status="failed", error_description="card declined"
    )
    assert signed(pay, envelope("payment.failed", payment=failed)).status_code == 200
    assert signed(pay, envelope("payment.captured", payment=payment)).status_code == 200
    time.sleep(1.5)
    assert checkout_status(pay, customer, created["checkout_id"]) == "paid"
    assert balance(pay, customer)["paid_paisa"] == 120_000


def test_payment_failed_then_paid_on_retry(pay: PaymentsStack, customer: Account) -> None:
    created = checkout(pay, customer, 100_000)
    pay.control(f"orders/{created['order_id']}/fail", {"reason": "insufficient_funds"})
    assert eventually(lambda: checkout_status(pay, customer, created["checkout_id"]) == "failed")
    assert balance(pay, customer)["paid_paisa"] == 0
    with pay.stack.client(customer.key) as http:
        got = http.get(f"/v1/checkouts/{created['checkout_id']}").json()
    assert got["failure_reason"]
    # The customer tries again on the same order: the capture still credits.
    pay.control(f"orders/{created['order_id']}/pay")
    wait_paid(pay, customer, 100_000)
    assert eventually(lambda: checkout_status(pay, customer, created["checkout_id"]) == "paid")


def test_unmatched_payments_are_acknowledged_and_kept_for_support(
    pay: PaymentsStack, customer: Account, support: str
) -> None:
    created = checkout(pay, customer, 100_000)
    # Paid less than ordered (the stand-in's override), and in another currency.
    pay.control(f"orders/{created['order_id']}/pay", {"amount": 90_000})
    unknown = payment_entity("order_NotOurs0000001", 50_000, notes={"account_id": customer.id})
    answer = signed(pay, envelope("payment.captured", payment=unknown))
    assert answer.status_code == 200
    other = checkout(pay, customer, 100_000)
    usd = payment_entity(other["order_id"], 100_000, currency="USD")
    assert signed(pay, envelope("payment.captured", payment=usd)).status_code == 200
    no_order = payment_entity("", 70_000)
    no_order.pop("order_id")
    assert signed(pay, envelope("payment.captured", payment=no_order)).status_code == 200

    def listed() -> dict[str, str] | None:
        with pay.stack.client(support) as http:
            items = http.get("/v1/payments/unmatched", params={"limit": 200}).json()["items"]
        found = {i["payment_id"]: i["disposition"] for i in items}
        wanted = (unknown["id"], usd["id"], no_order["id"])
        return found if all(p in found for p in wanted) else None

    found = eventually(listed)
    assert found[unknown["id"]] == "unknown_order"
    assert found[usd["id"]] == "currency_mismatch"
    assert found[no_order["id"]] == "no_order"
    assert "amount_mismatch" in found.values()
    assert balance(pay, customer)["paid_paisa"] == 0
    assert checkout_status(pay, customer, created["checkout_id"]) == "created"
    with pay.stack.client(customer.key) as http:
        assert http.get("/v1/payments/unmatched").status_code == 403


def test_refund_events_are_stored_for_the_refund_flow(pay: PaymentsStack) -> None:
    refund = {
        "id": f"rfnd_{uuid.uuid4().hex[:14]}",
        "entity": "refund",
        "amount": 5_000,
        "currency": "INR",
        "payment_id": "pay_Whatever0000001",
        "status": "processed",
        "notes": {"refund_id": "ref_1"},
    }
    for event in ("refund.processed", "refund.failed"):
        answer = signed(pay, envelope(event, refund={**refund, "status": event[7:]}))
        assert answer.status_code == 200, answer.text
        row = stored_event(pay, answer.json()["event_id"])
        assert row.disposition == "refund_event" and row.refund_id == refund["id"]
        assert row.payload["payload"]["refund"]["entity"]["notes"] == {"refund_id": "ref_1"}


def test_malformed_body_with_a_valid_signature_is_400(pay: PaymentsStack) -> None:
    for raw in (b"not json", b"[]", b'{"payload": {}}'):
        assert signed(pay, raw).status_code == 400


def payment_of(event: dict[str, Any]) -> str | None:
    payment = event["payload"]["payload"].get("payment")
    return None if payment is None else str(payment["entity"]["id"])
