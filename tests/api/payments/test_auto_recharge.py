"""Auto-recharge (contract §6) through the real stack: settings by `PATCH /v1/accounts/{id}`
(a saved card first), one recurring charge per crossing credited by the webhook, and three
failures in a row switching it off with an email each."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import select

from db.models import EmailLog
from db.payment_models import Checkout
from ledger.invariants import check_ledger
from tests.api.conftest import Account, create_account
from tests.api.payments.conftest import balance, checkout, checkout_status, wait_paid
from tests.support.payments import PaymentsStack, eventually

THRESHOLD = 90_000
RECHARGE = 50_000


def patch(pay: PaymentsStack, account: Account, body: dict[str, Any]) -> Any:
    with pay.stack.client(account.key) as http:
        return http.patch(f"/v1/accounts/{account.id}", json=body)


def refund(pay: PaymentsStack, support: str, account: Account, amount: int) -> None:
    """Spend paid balance: a support refund debits it at once."""
    with pay.stack.client(support) as http:
        response = http.post(
            f"/v1/accounts/{account.id}/refunds",
            json={"amount_paisa": amount},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    assert response.status_code == 202, response.text


def top_up(pay: PaymentsStack, account: Account, amount: int) -> None:
    with pay.stack.client(pay.stack.admin_key) as http:
        response = http.post(
            f"/v1/accounts/{account.id}/topups",
            json={"amount_paisa": amount, "payment_reference": uuid.uuid4().hex},
        )
    assert response.status_code == 201, response.text


def recharges(pay: PaymentsStack, account: Account) -> list[Checkout]:
    with pay.stack.api.app.state.billing.session_factory() as session:
        return list(
            session.scalars(
                select(Checkout)
                .where(Checkout.account_id == account.id, Checkout.kind == "auto_recharge")
                .order_by(Checkout.created_at)
            )
        )


def with_saved_card(pay: PaymentsStack) -> Account:
    account = create_account(pay.stack, name="Eka Labs", email=f"{uuid.uuid4().hex}@eka.example")
    created = checkout(pay, account, 100_000, save_method=True)
    pay.control(f"orders/{created['order_id']}/pay", {"save_method": True})
    wait_paid(pay, account, 100_000)
    assert eventually(lambda: checkout_status(pay, account, created["checkout_id"]) == "paid")
    return account


def enable(pay: PaymentsStack, account: Account) -> dict[str, Any]:
    body = {"enabled": True, "threshold_paisa": THRESHOLD, "amount_paisa": RECHARGE}
    response = patch(pay, account, {"auto_recharge": body})
    assert response.status_code == 200, response.text
    settings: dict[str, Any] = response.json()["auto_recharge"]
    return settings


def test_settings_need_a_saved_card_and_valid_amounts(
    pay: PaymentsStack, customer: Account
) -> None:
    body = {"enabled": True, "threshold_paisa": THRESHOLD, "amount_paisa": RECHARGE}
    response = patch(pay, customer, {"auto_recharge": body})
    assert response.status_code == 422 and response.json()["code"] == "no_saved_method"
    for bad in (
        {"enabled": True, "threshold_paisa": -1, "amount_paisa": RECHARGE},
        {"enabled": True, "threshold_paisa": THRESHOLD, "amount_paisa": 500},
        {"enabled": "yes"},
        {"threshold_paisa": THRESHOLD},
    ):
        assert patch(pay, customer, {"auto_recharge": bad}).status_code == 422, bad
    other = create_account(pay.stack, name="Other", email="o@o.example")
    assert patch(pay, other, {"auto_recharge": {"enabled": False}}).status_code == 200
    with pay.stack.client(customer.key) as http:
        denied = http.patch(f"/v1/accounts/{other.id}", json={"auto_recharge": {"enabled": False}})
        assert denied.status_code == 404
        account = http.get(f"/v1/accounts/{customer.id}").json()
    assert account["auto_recharge"]["enabled"] is False
    assert account["auto_recharge"]["has_saved_method"] is False


def test_one_charge_per_crossing(pay: PaymentsStack, support: str) -> None:
    account = with_saved_card(pay)
    settings = enable(pay, account)
    assert settings == {
        "enabled": True,
        "threshold_paisa": THRESHOLD,
        "amount_paisa": RECHARGE,
        "consecutive_failures": 0,
        "has_saved_method": True,
    }
    assert recharges(pay, account) == []  # 100,000 paid + 5,000 promo: above the threshold
    # First crossing: 105,000 - 20,000 = 85,000 < 90,000.
    refund(pay, support, account, 20_000)
    wait_paid(pay, account, 80_000 + RECHARGE, timeout=20)
    [first] = recharges(pay, account)
    assert eventually(lambda: recharges(pay, account)[0].status == "paid")
    # Still above: further spending that stays above the threshold charges nothing.
    refund(pay, support, account, 10_000)
    wait_paid(pay, account, 120_000)
    assert len(recharges(pay, account)) == 1
    # Second crossing: 125,000 - 40,000 = 85,000.
    refund(pay, support, account, 40_000)
    wait_paid(pay, account, 80_000 + RECHARGE, timeout=20)
    second = eventually(lambda: len(recharges(pay, account)) == 2 and recharges(pay, account)[1])
    assert second.id != first.id and second.amount_paisa == RECHARGE
    assert eventually(lambda: recharges(pay, account)[1].status == "paid")
    assert balance(pay, account)["paid_paisa"] == 130_000
    with pay.stack.api.app.state.billing.session_factory() as session:
        assert check_ledger(session, [account.id]) == []


def test_three_failures_in_a_row_switch_it_off(pay: PaymentsStack, support: str) -> None:
    account = with_saved_card(pay)
    enable(pay, account)
    pay.control("fail-next", {"kind": "recurring", "count": 3, "reason": "card_declined"})
    paid = 100_000
    for attempt in range(1, 4):
        refund(pay, support, account, 20_000)  # below the threshold: a crossing
        paid -= 20_000

        def failed_attempt(attempt: int = attempt) -> Checkout | None:
            rows = recharges(pay, account)
            return rows[-1] if len(rows) == attempt and rows[-1].status == "failed" else None

        failed = eventually(failed_attempt, timeout=20)
        assert failed.failure_reason
        with pay.stack.client(account.key) as http:
            state = http.get(f"/v1/accounts/{account.id}").json()["auto_recharge"]
        assert state["consecutive_failures"] == attempt
        assert state["enabled"] is (attempt < 3)
        email_key = f"auto-recharge-failed:{failed.id}"
        eventually(lambda: email_sent(pay, email_key), timeout=15)  # noqa: B023 (called at once)
        if attempt < 3:
            top_up(pay, account, 20_000)  # back above: re-armed for the next crossing
            paid += 20_000
    assert balance(pay, account)["paid_paisa"] == paid
    # Off now: another crossing charges nothing.
    top_up(pay, account, 20_000)
    refund(pay, support, account, 20_000)
    eventually(lambda: balance(pay, account)["paid_paisa"] == paid, timeout=10)
    time.sleep(2)
    assert len(recharges(pay, account)) == 3


def email_sent(pay: PaymentsStack, key: str) -> bool:
    with pay.stack.api.app.state.billing.session_factory() as session:
        row = session.get(EmailLog, key)
        return row is not None and row.status == "sent"


def test_a_lost_gateway_answer_is_retried_without_charging_twice(
    pay: PaymentsStack, support: str
) -> None:
    account = with_saved_card(pay)
    enable(pay, account)
    # The first recurring charge goes through at the gateway but its answer is a 500.
    pay.control(
        "faults",
        {"path": "/v1/payments/create/recurring", "method": "POST", "status": 500, "when": "after"},
    )
    refund(pay, support, account, 20_000)
    wait_paid(pay, account, 80_000 + RECHARGE, timeout=20)
    [recharge] = recharges(pay, account)
    assert eventually(lambda: recharges(pay, account)[0].status == "paid")
    time.sleep(2)
    assert balance(pay, account)["paid_paisa"] == 80_000 + RECHARGE
    payments = pay.standin.store.order_payments(recharge.order_id or "")["items"]
    assert [p["status"] for p in payments] == ["captured"]
