"""Refunds go back to where the money came from (contract §6): the real API and worker, the
Razorpay stand-in over HTTP (refunds with X-Refund-Idempotency, RazorpayX payouts), its signed
`refund.*` webhooks back to the API, PostgreSQL and the Temporal dev server."""

from __future__ import annotations

import concurrent.futures
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from adapters.payments.razorpay_signatures import webhook_signature
from db.session import get_engine
from tests.api.conftest import Account, create_account
from tests.api.payments.conftest import balance, checkout, send_event, wait_paid
from tests.support.payments import WEBHOOK_SECRET, PaymentsStack, eventually

ADMIN_TOPUP = 20_000


def buy(pay: PaymentsStack, account: Account, amount_paisa: int, paid_before: int) -> str:
    """A checkout paid on the stand-in; returns the payment id once credited."""
    created = checkout(pay, account, amount_paisa)
    answer = pay.control(f"orders/{created['order_id']}/pay")
    wait_paid(pay, account, paid_before + amount_paisa)
    payment_id: str = answer["payment"]["id"]
    return payment_id


def refund(pay: PaymentsStack, support: str, account: Account, amount: int | None) -> Any:
    body = {} if amount is None else {"amount_paisa": amount}
    with pay.stack.client(support) as http:
        response = http.post(
            f"/v1/accounts/{account.id}/refunds",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    assert response.status_code == 202, response.text
    return response.json()


def get_refund(pay: PaymentsStack, support: str, refund_id: str) -> dict[str, Any]:
    with pay.stack.client(support) as http:
        response = http.get(f"/v1/refunds/{refund_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def settled(pay: PaymentsStack, support: str, refund_id: str, timeout: float = 20) -> Any:
    return eventually(
        lambda: (r := get_refund(pay, support, refund_id))["status"] != "pending" and r,
        timeout=timeout,
        every=0.2,
    )


def gateway_refunds(pay: PaymentsStack, payment_id: str) -> list[dict[str, Any]]:
    with pay.standin.store.lock:
        return [
            dict(r) for r in pay.standin.store.refunds.values() if r["payment_id"] == payment_id
        ]


def refunded_paisa(pay: PaymentsStack, payment_id: str) -> int:
    with get_engine(pay.stack.database_url).connect() as connection:
        value = connection.scalar(
            text("SELECT refunded_paisa FROM gateway_payments WHERE id = :id"), {"id": payment_id}
        )
    return int(value)


def funded_customer(pay: PaymentsStack, amounts: tuple[int, ...]) -> tuple[Account, list[str]]:
    """An account with an admin top-up first, then card payments of `amounts` (in order)."""
    account = create_account(pay.stack, topup_paisa=ADMIN_TOPUP, name="Chai Point")
    paid, payments = ADMIN_TOPUP, []
    for amount in amounts:
        payments.append(buy(pay, account, amount, paid))
        paid += amount
    return account, payments


def test_a_refund_splits_newest_payment_first_then_a_payout(
    pay: PaymentsStack, support: str
) -> None:
    account, (older, newer) = funded_customer(pay, (10_000, 30_000))
    created = refund(pay, support, account, 55_000)
    done = settled(pay, support, created["id"])
    assert done["status"] == "completed" and done["amount_paisa"] == 55_000
    parts = [
        (p["part_no"], p["kind"], p["payment_id"], p["amount_paisa"], p["status"])
        for p in done["parts"]
    ]
    assert parts == [
        (1, "gateway", newer, 30_000, "processed"),
        (2, "gateway", older, 10_000, "processed"),
        (3, "payout", None, 15_000, "processed"),
    ]
    assert done["parts"][0]["gateway_reference"].startswith("rfnd_")
    assert done["parts"][2]["gateway_reference"].startswith("pout_")
    [at_newer] = gateway_refunds(pay, newer)
    assert at_newer["amount"] == 30_000 and at_newer["notes"]["refund_id"] == created["id"]
    assert at_newer["notes"]["part_no"] == "1"
    assert refunded_paisa(pay, newer) == 30_000 and refunded_paisa(pay, older) == 10_000
    assert balance(pay, account)["paid_paisa"] == 60_000 - 55_000
    # The refund.processed webhooks reached the settled parts and changed nothing more.
    assert balance(pay, account)["paid_paisa"] == 5_000


def test_a_gateway_5xx_after_the_refund_is_retried_with_the_same_key_once(
    pay: PaymentsStack, support: str
) -> None:
    account, [payment] = funded_customer(pay, (30_000,))
    # The gateway makes the refund, then its answer is lost (a 500), twice.
    pay.control(
        "faults",
        {"path": "/v1/payments/*/refund", "method": "POST", "count": 2, "when": "after"},
    )
    created = refund(pay, support, account, 25_000)
    done = settled(pay, support, created["id"], timeout=30)
    assert done["status"] == "completed"
    assert [(p["kind"], p["amount_paisa"], p["status"]) for p in done["parts"]] == [
        ("gateway", 25_000, "processed")
    ]
    [made] = gateway_refunds(pay, payment)  # three sends, one refund
    assert made["amount"] == 25_000 and made["id"] == done["parts"][0]["gateway_reference"]
    with httpx_client(pay) as http:
        sends = [
            r
            for r in http.get("/_standin/requests").json()["requests"]
            if r["path"] == f"/v1/payments/{payment}/refund"
        ]
    assert len(sends) == 3 and len({r["idempotency_key"] for r in sends}) == 1
    assert balance(pay, account)["paid_paisa"] == 50_000 - 25_000


def test_a_refund_the_gateway_fails_puts_that_part_back(pay: PaymentsStack, support: str) -> None:
    account, (older, newer) = funded_customer(pay, (10_000, 30_000))
    pay.control("fail-next", {"kind": "refund", "count": 1, "reason": "card closed"})
    created = refund(pay, support, account, 35_000)
    done = settled(pay, support, created["id"])
    # The newest payment's part failed (refund.failed): its ₹300 is back; the rest went out.
    assert done["status"] == "completed"
    first, second = done["parts"]
    assert (first["payment_id"], first["amount_paisa"], first["status"]) == (
        newer,
        30_000,
        "failed",
    )
    assert (second["payment_id"], second["amount_paisa"], second["status"]) == (
        older,
        5_000,
        "processed",
    )
    assert "returned to the balance" in (done["failure_reason"] or "")
    assert balance(pay, account)["paid_paisa"] == 60_000 - 5_000
    assert refunded_paisa(pay, newer) == 0 and refunded_paisa(pay, older) == 5_000
    with pay.stack.client(account.key) as http:
        kinds = [
            t["kind"] for t in http.get(f"/v1/accounts/{account.id}/transactions").json()["items"]
        ]
    assert kinds[:2] == ["refund_reversal", "refund"]


def test_every_part_failing_fails_the_refund_and_restores_the_balance(
    pay: PaymentsStack, support: str
) -> None:
    account, [payment] = funded_customer(pay, (30_000,))
    pay.control("fail-next", {"kind": "refund", "count": 1})
    created = refund(pay, support, account, 30_000)
    done = settled(pay, support, created["id"])
    assert done["status"] == "failed" and done["parts"][0]["status"] == "failed"
    assert balance(pay, account)["paid_paisa"] == 50_000
    assert refunded_paisa(pay, payment) == 0


def test_duplicate_and_out_of_order_refund_webhooks_settle_once(
    pay: PaymentsStack, support: str
) -> None:
    account, [payment] = funded_customer(pay, (30_000,))
    pay.control("config", {"refund_settle_seconds": 1.0})  # pending first, webhook later
    try:
        created = refund(pay, support, account, 20_000)
        done = settled(pay, support, created["id"])
    finally:
        pay.control("config", {"refund_settle_seconds": 0})
    assert done["status"] == "completed" and done["parts"][0]["status"] == "processed"
    [made] = gateway_refunds(pay, payment)
    processed = eventually(lambda: refund_events(pay, "refund.processed", made["id"]))
    # The same event again, twice, and a forged-late refund.failed for the settled part.
    with httpx_client(pay) as http:
        for _ in range(2):
            http.post(f"/_standin/webhooks/{processed[0]['id']}/redeliver").raise_for_status()
    late = dict(made, status="failed")
    body = {
        "entity": "event",
        "event": "refund.failed",
        "contains": ["refund"],
        "payload": {"refund": {"entity": late}},
        "created_at": 0,
    }
    raw = json.dumps(body).encode()
    answer = send_event(pay, raw, webhook_signature(raw, WEBHOOK_SECRET), uuid.uuid4().hex)
    assert answer.status_code == 200, answer.text
    after = get_refund(pay, support, created["id"])
    assert after["status"] == "completed" and after["parts"][0]["status"] == "processed"
    assert balance(pay, account)["paid_paisa"] == 50_000 - 20_000
    assert refunded_paisa(pay, payment) == 20_000


def test_concurrent_refunds_never_over_refund_a_payment(pay: PaymentsStack, support: str) -> None:
    account, [payment] = funded_customer(pay, (30_000,))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        created = list(pool.map(lambda _: refund(pay, support, account, 12_000), range(4)))
    done = [settled(pay, support, c["id"], timeout=30) for c in created]
    assert all(d["status"] == "completed" for d in done)
    to_payment = sum(
        p["amount_paisa"] for d in done for p in d["parts"] if p["payment_id"] == payment
    )
    payouts = sum(p["amount_paisa"] for d in done for p in d["parts"] if p["kind"] == "payout")
    assert to_payment == 30_000 and payouts == 48_000 - 30_000
    assert all(p["status"] == "processed" for d in done for p in d["parts"])
    assert sum(r["amount"] for r in gateway_refunds(pay, payment)) == 30_000
    assert refunded_paisa(pay, payment) == 30_000
    assert balance(pay, account)["paid_paisa"] == 50_000 - 48_000


def httpx_client(pay: PaymentsStack) -> httpx.Client:
    return httpx.Client(base_url=pay.standin.url, timeout=10)


def refund_events(pay: PaymentsStack, event: str, gateway_refund_id: str) -> list[dict[str, Any]]:
    with httpx_client(pay) as http:
        events = http.get("/_standin/webhooks", params={"event": event}).json()["events"]
    return [
        e for e in events if e["payload"]["payload"]["refund"]["entity"]["id"] == gateway_refund_id
    ]


def test_a_payout_goes_to_the_customers_own_fund_account(pay: PaymentsStack, support: str) -> None:
    account = create_account(pay.stack, topup_paisa=ADMIN_TOPUP, name="Bank Transfer Co")
    with pay.stack.client(support) as http:
        bad = http.put(
            f"/v1/accounts/{account.id}/payout-fund-account", json={"fund_account_id": "x"}
        )
        assert bad.status_code == 422, bad.text
        saved = http.put(
            f"/v1/accounts/{account.id}/payout-fund-account",
            json={"fund_account_id": "fa_CustomerBank01"},
        )
    assert saved.json() == {"account_id": account.id, "fund_account_id": "fa_CustomerBank01"}
    created = refund(pay, support, account, 7_500)
    done = settled(pay, support, created["id"])
    [part] = done["parts"]
    assert (part["kind"], part["amount_paisa"], part["status"]) == ("payout", 7_500, "processed")
    with pay.standin.store.lock:
        payout = dict(pay.standin.store.payouts[part["gateway_reference"]])
    assert payout["fund_account_id"] == "fa_CustomerBank01" and payout["amount"] == 7_500
    assert payout["notes"]["refund_id"] == created["id"]
