"""`POST /v1/accounts/{id}/checkouts` and `GET /v1/checkouts/{id}`: bounds, access, the gateway
down (503, nothing stored) and back, and a checkout paid through the stand-in."""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.payment_models import Checkout
from tests.api.conftest import Account, create_account
from tests.api.payments.conftest import balance, checkout, checkout_status, topups, wait_paid
from tests.support.payments import PaymentsStack, eventually


def checkout_count(factory: sessionmaker[Session], account_id: str) -> int:
    with factory() as session:
        return int(
            session.scalar(select(func.count()).where(Checkout.account_id == account_id)) or 0
        )


def test_checkout_creates_an_order_and_pays_once(pay: PaymentsStack, customer: Account) -> None:
    created = checkout(pay, customer, 150_000)
    assert created["status"] == "created"
    assert created["amount_paisa"] == 150_000 and created["currency"] == "INR"
    assert created["key_id"] == pay.standin.key_id
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert abs(lifetime.total_seconds() - 1800) < 5  # CHECKOUT_EXPIRY_SECONDS
    order = pay.standin.store.get("orders", created["order_id"])
    assert order["amount"] == 150_000 and order["currency"] == "INR"
    assert order["receipt"] == created["checkout_id"]
    assert order["notes"]["account_id"] == customer.id
    before = balance(pay, customer)["paid_paisa"]
    paid = pay.control(f"orders/{created['order_id']}/pay")
    wait_paid(pay, customer, before + 150_000, timeout=2.5)
    assert eventually(lambda: checkout_status(pay, customer, created["checkout_id"]) == "paid")
    [topup] = topups(pay, customer)
    assert topup["reference"] == paid["payment"]["id"] and topup["amount_paisa"] == 150_000
    with pay.stack.client(customer.key) as http:
        got = http.get(f"/v1/checkouts/{created['checkout_id']}").json()
    assert got["payment_id"] == paid["payment"]["id"]
    assert got["receipt_url"] == f"/billing/receipts/{created['checkout_id']}"


def test_amount_bounds_and_bad_input(pay: PaymentsStack, customer: Account) -> None:
    factory = pay.stack.api.app.state.billing.session_factory
    with pay.stack.client(customer.key) as http:
        url = f"/v1/accounts/{customer.id}/checkouts"
        for amount in (9_999, 50_000_001, 0, -100_000):
            response = http.post(url, json={"amount_paisa": amount})
            assert response.status_code == 422, (amount, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "validation_error"
        for body in ({"amount_paisa": 100_000.5}, {"amount_paisa": "100000"}, {}, {"x": 1}):
            assert http.post(url, json=body).status_code == 422, body
        assert http.post(url, json={"amount_paisa": 10_000}).status_code == 201
        assert http.post(url, json={"amount_paisa": 50_000_000}).status_code == 201
    assert checkout_count(factory, customer.id) == 2


def test_another_accounts_checkouts_are_not_found(pay: PaymentsStack, customer: Account) -> None:
    other = create_account(pay.stack, name="Other Co", email="o@other.example")
    with pay.stack.client(customer.key) as http:
        response = http.post(f"/v1/accounts/{other.id}/checkouts", json={"amount_paisa": 100_000})
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        theirs = checkout(pay, other)
        assert http.get(f"/v1/checkouts/{theirs['checkout_id']}").status_code == 404
        assert http.get("/v1/checkouts/chk_nope").status_code == 404
    factory = pay.stack.api.app.state.billing.session_factory
    assert checkout_count(factory, other.id) == 1


def test_support_reads_checkouts_but_cannot_create(
    pay: PaymentsStack, customer: Account, support: str
) -> None:
    created = checkout(pay, customer)
    with pay.stack.client(support) as http:
        assert http.get(f"/v1/checkouts/{created['checkout_id']}").status_code == 200
        response = http.post(
            f"/v1/accounts/{customer.id}/checkouts", json={"amount_paisa": 100_000}
        )
        assert response.status_code == 403


def test_gateway_down_is_a_503_then_it_works(pay: PaymentsStack, customer: Account) -> None:
    factory = pay.stack.api.app.state.billing.session_factory
    url = f"/v1/accounts/{customer.id}/checkouts"
    pay.control("faults", {"path": "/v1/orders", "method": "POST", "count": 1, "status": 502})
    with pay.stack.client(customer.key) as http:
        response = http.post(url, json={"amount_paisa": 100_000})
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "payment_gateway_unavailable"
        assert checkout_count(factory, customer.id) == 0
        # A timeout: the stand-in hangs longer than the API's gateway timeout.
        pay.control(
            "faults",
            {
                "path": "/v1/orders",
                "method": "POST",
                "count": 1,
                "delay_seconds": 4,
                "status": None,
            },
        )
        slow = http.post(url, json={"amount_paisa": 100_000}, timeout=30)
        assert slow.status_code == 503, slow.text
        assert slow.json()["code"] == "payment_gateway_unavailable"
        assert checkout_count(factory, customer.id) == 0
        # Meanwhile the rest of the API serves; then the gateway is back and it works.
        assert http.get(f"/v1/accounts/{customer.id}/balance").status_code == 200
        httpx.delete(f"{pay.standin.url}/_standin/faults", timeout=10).raise_for_status()
        assert http.post(url, json={"amount_paisa": 100_000}).status_code == 201
    assert checkout_count(factory, customer.id) == 1
