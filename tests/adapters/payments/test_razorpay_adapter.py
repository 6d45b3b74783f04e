"""The Razorpay adapter through the official SDK, over real HTTP, against the local stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import razorpay

from adapters.payments.razorpay import RazorpayGateway
from adapters.payments.razorpay_payouts import RazorpayPayouts
from adapters.payments.razorpay_signatures import (
    verify_payment_signature,
)
from adapters.payments.razorpay_transport import idempotency_key
from adapters.payments.razorpay_types import (
    RazorpayNotConfiguredError,
    RazorpayPayment,
    RazorpayPayout,
    RazorpayRejectedError,
    RazorpayRetryableError,
)
from core.config import Settings
from dev.procs import free_port
from dev.razorpay.standin import RazorpayStandIn
from tests.support.razorpay import http

ACCOUNT_ID = "3f1c0a52-8d7e-4f7a-9a53-1b2c3d4e5f60"


@pytest.fixture
def standin() -> Iterator[RazorpayStandIn]:
    with RazorpayStandIn(duplicate_probability=0, retry_delays=(0.05,)) as server:
        yield server


@pytest.fixture
def gateway(standin: RazorpayStandIn) -> RazorpayGateway:
    return RazorpayGateway(standin.key_id, standin.key_secret, api_url=standin.url)


def impatient(standin: RazorpayStandIn) -> RazorpayGateway:
    """A gateway that gives up after 0.5 s (the faults below hang for 1.5 s)."""
    return RazorpayGateway(
        standin.key_id, standin.key_secret, api_url=standin.url, timeout_seconds=0.5
    )


def control(standin: RazorpayStandIn, path: str, body: dict[str, object]) -> dict[str, object]:
    response = http.post(f"{standin.url}/_standin/{path}", json=body)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def paid_order(
    standin: RazorpayStandIn, gateway: RazorpayGateway, amount_paisa: int, *, save: bool = False
) -> dict[str, str]:
    """An order paid through the checkout's Pay action: ids of the payment, order and token."""
    order = gateway.create_order(amount_paisa=amount_paisa, receipt="chk-1", account_id=ACCOUNT_ID)
    paid = control(standin, f"orders/{order.id}/pay", {"save_method": save})
    payment = paid["payment"]
    assert isinstance(payment, dict)
    return {
        "order_id": order.id,
        "payment_id": payment["id"],
        "token_id": payment["token_id"],
        "customer_id": payment["customer_id"],
        "signature": str(paid["razorpay_signature"]),
    }


def charge_saved_token(
    gateway: RazorpayGateway, order_id: str, saved: dict[str, str]
) -> RazorpayPayment:
    return gateway.charge_recurring(
        order_id=order_id,
        amount_paisa=20_000,
        customer_id=saved["customer_id"],
        token_id=saved["token_id"],
        email="owner@example.com",
    )


def refunds_of(standin: RazorpayStandIn, payment_id: str) -> list[dict[str, object]]:
    return list(standin.store.payment_refunds(payment_id)["items"])


# Orders and payments ------------------------------------------------------------------------
def test_create_and_fetch_order(gateway: RazorpayGateway) -> None:
    order = gateway.create_order(
        amount_paisa=50_000, receipt="chk-42", account_id=ACCOUNT_ID, notes={"purpose": "credits"}
    )
    assert order.id.startswith("order_")
    assert (order.amount_paisa, order.currency, order.receipt) == (50_000, "INR", "chk-42")
    assert order.status == "created" and order.amount_due_paisa == 50_000
    assert order.notes == {"purpose": "credits", "account_id": ACCOUNT_ID}
    assert gateway.fetch_order(order.id) == order
    assert gateway.order_payments(order.id) == []


def test_paid_order_has_one_captured_payment(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    ids = paid_order(standin, gateway, 75_000)
    order = gateway.fetch_order(ids["order_id"])
    assert (order.status, order.amount_paid_paisa, order.amount_due_paisa) == ("paid", 75_000, 0)
    payment = gateway.fetch_payment(ids["payment_id"])
    assert (payment.status, payment.captured, payment.amount_paisa) == ("captured", True, 75_000)
    assert payment.order_id == order.id and payment.notes["account_id"] == ACCOUNT_ID
    assert payment.refundable_paisa == 75_000
    assert gateway.order_payments(order.id) == [payment]


def test_checkout_signature_verifies_with_our_helper_and_the_sdk(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    ids = paid_order(standin, gateway, 10_000)
    args = (ids["order_id"], ids["payment_id"], ids["signature"])
    assert verify_payment_signature(*args, standin.key_secret)
    assert not verify_payment_signature(*args, "another-secret")
    sdk = razorpay.Client(auth=(standin.key_id, standin.key_secret))
    fields = ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")
    assert sdk.utility.verify_payment_signature(dict(zip(fields, args, strict=True)))


# Refunds ------------------------------------------------------------------------------------
def test_partial_refunds_retried_with_the_same_key_pay_once(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    payment_id = paid_order(standin, gateway, 50_000)["payment_id"]
    first_key = idempotency_key("refund-1", "part", "1")
    first = gateway.refund_payment(
        payment_id=payment_id, amount_paisa=20_000, idempotency_key=first_key
    )
    assert (first.status, first.amount_paisa, first.payment_id) == ("processed", 20_000, payment_id)
    again = gateway.refund_payment(
        payment_id=payment_id, amount_paisa=20_000, idempotency_key=first_key
    )
    assert again == first
    assert gateway.fetch_payment(payment_id).amount_refunded_paisa == 20_000

    rest = gateway.refund_payment(
        payment_id=payment_id,
        amount_paisa=30_000,
        idempotency_key=idempotency_key("refund-1", "part", "2"),
    )
    assert rest.id != first.id
    payment = gateway.fetch_payment(payment_id)
    assert (payment.amount_refunded_paisa, payment.refund_status) == (50_000, "full")
    assert gateway.fetch_refund(rest.id) == rest
    with pytest.raises(RazorpayRejectedError) as refused:
        gateway.refund_payment(
            payment_id=payment_id, amount_paisa=100, idempotency_key=idempotency_key("refund-2")
        )
    assert refused.value.status == 400 and refused.value.field == "amount"
    assert len(refunds_of(standin, payment_id)) == 2


def test_refund_whose_answer_is_a_5xx_after_recording_is_retried_once(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    payment_id = paid_order(standin, gateway, 40_000)["payment_id"]
    path = f"/v1/payments/{payment_id}/refund"
    control(standin, "faults", {"path": path, "status": 502, "when": "after"})
    key = idempotency_key("refund-7", "part", "1")

    with pytest.raises(RazorpayRetryableError) as lost:
        gateway.refund_payment(payment_id=payment_id, amount_paisa=15_000, idempotency_key=key)
    assert lost.value.status == 502 and lost.value.retryable
    assert len(refunds_of(standin, payment_id)) == 1  # the gateway did record it

    retried = gateway.refund_payment(
        payment_id=payment_id, amount_paisa=15_000, idempotency_key=key
    )
    assert [r["id"] for r in refunds_of(standin, payment_id)] == [retried.id]
    assert gateway.fetch_payment(payment_id).amount_refunded_paisa == 15_000
    sent = [r for r in standin.app.requests if r["path"] == path]
    assert [(r["status"], r["idempotency_key"]) for r in sent] == [(502, key), (200, key)]


def test_refund_that_times_out_is_retried_once(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    payment_id = paid_order(standin, gateway, 40_000)["payment_id"]
    path = f"/v1/payments/{payment_id}/refund"
    control(standin, "faults", {"path": path, "status": None, "delay_seconds": 1.5})
    key = idempotency_key("refund-8", "part", "1")

    with pytest.raises(RazorpayRetryableError, match="timed out"):
        impatient(standin).refund_payment(
            payment_id=payment_id, amount_paisa=10_000, idempotency_key=key
        )
    # The retry races the hung first request, which the stand-in still processes afterwards.
    retried = gateway.refund_payment(
        payment_id=payment_id, amount_paisa=10_000, idempotency_key=key
    )
    deadline = time.monotonic() + 10
    while len([r for r in standin.app.requests if r["path"] == path]) < 2:
        assert time.monotonic() < deadline, "the hung request never finished"
        time.sleep(0.02)
    assert [r["id"] for r in refunds_of(standin, payment_id)] == [retried.id]
    assert gateway.fetch_payment(payment_id).amount_refunded_paisa == 10_000


def test_the_same_refund_part_sent_from_many_threads_at_once_pays_once(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    payment_id = paid_order(standin, gateway, 40_000)["payment_id"]
    key = idempotency_key("refund-13", "part", "1")
    with ThreadPoolExecutor(max_workers=8) as pool:
        refunds = list(
            pool.map(
                lambda _: gateway.refund_payment(
                    payment_id=payment_id, amount_paisa=5_000, idempotency_key=key
                ),
                range(16),
            )
        )
    assert len({refund.id for refund in refunds}) == 1
    assert gateway.fetch_payment(payment_id).amount_refunded_paisa == 5_000


def test_same_refund_key_with_another_amount_is_rejected(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    payment_id = paid_order(standin, gateway, 40_000)["payment_id"]
    key = idempotency_key("refund-9")
    gateway.refund_payment(payment_id=payment_id, amount_paisa=10_000, idempotency_key=key)
    with pytest.raises(RazorpayRejectedError, match="same idempotency key"):
        gateway.refund_payment(payment_id=payment_id, amount_paisa=12_000, idempotency_key=key)
    assert gateway.fetch_payment(payment_id).amount_refunded_paisa == 10_000


def test_refund_failed_at_the_bank_settles_failed_and_frees_the_amount(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    payment_id = paid_order(standin, gateway, 30_000)["payment_id"]
    control(standin, "fail-next", {"kind": "refund", "reason": "account_closed"})
    refund = gateway.refund_payment(
        payment_id=payment_id, amount_paisa=30_000, idempotency_key=idempotency_key("refund-10")
    )
    assert refund.status == "pending"
    deadline = time.monotonic() + 5
    while gateway.fetch_refund(refund.id).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gateway.fetch_refund(refund.id).status == "failed"
    assert gateway.fetch_payment(payment_id).refundable_paisa == 30_000
    standin.wait_for_events(lambda events: len(events) == 1, event="refund.failed")


# Recurring payments -------------------------------------------------------------------------
def test_recurring_payment_on_a_saved_token(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    first = paid_order(standin, gateway, 50_000, save=True)
    assert first["token_id"].startswith("token_") and first["customer_id"].startswith("cust_")
    order = gateway.create_order(
        amount_paisa=20_000,
        receipt="recharge-1",
        account_id=ACCOUNT_ID,
        customer_id=first["customer_id"],
    )
    payment = charge_saved_token(gateway, order.id, first)
    assert (payment.status, payment.amount_paisa, payment.order_id) == (
        "captured",
        20_000,
        order.id,
    )
    assert payment.token_id == first["token_id"]
    assert gateway.fetch_order(order.id).status == "paid"
    # Asked again (say the activity was retried), it returns the same payment, charges nothing.
    assert charge_saved_token(gateway, order.id, first).id == payment.id
    assert len(gateway.order_payments(order.id)) == 1


def test_recurring_payment_whose_answer_is_lost_is_not_charged_twice(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    first = paid_order(standin, gateway, 50_000, save=True)
    order = gateway.create_order(
        amount_paisa=20_000, receipt="r-2", account_id=ACCOUNT_ID, customer_id=first["customer_id"]
    )
    control(standin, "faults", {"path": "/v1/payments/create/recurring", "when": "after"})
    with pytest.raises(RazorpayRetryableError):
        charge_saved_token(gateway, order.id, first)
    payment = charge_saved_token(gateway, order.id, first)
    assert [p.id for p in gateway.order_payments(order.id)] == [payment.id]
    assert payment.status == "captured"


def test_declined_recurring_payment_is_final(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    first = paid_order(standin, gateway, 50_000, save=True)
    order = gateway.create_order(
        amount_paisa=20_000, receipt="r-3", account_id=ACCOUNT_ID, customer_id=first["customer_id"]
    )
    control(standin, "fail-next", {"kind": "recurring", "reason": "insufficient_funds"})
    with pytest.raises(RazorpayRejectedError) as declined:
        charge_saved_token(gateway, order.id, first)
    assert declined.value.reason == "insufficient_funds"
    assert declined.value.metadata["order_id"] == order.id
    assert gateway.fetch_order(order.id).status == "attempted"
    [failed] = gateway.order_payments(order.id)
    assert (failed.status, failed.error_reason) == ("failed", "insufficient_funds")
    standin.wait_for_events(lambda events: len(events) == 1, event="payment.failed")


# Payouts ------------------------------------------------------------------------------------
def test_payouts_are_idempotent_per_key(standin: RazorpayStandIn) -> None:
    payouts = RazorpayPayouts(
        standin.key_id, standin.key_secret, account_number="7878780080316316", api_url=standin.url
    )

    def pay_out(key: str, amount_paisa: int = 25_000) -> RazorpayPayout:
        return payouts.create_payout(
            fund_account_id="fa_00000000000001",
            amount_paisa=amount_paisa,
            idempotency_key=key,
            reference_id="refund-11-bank",
        )

    key = idempotency_key("refund-11", "bank")
    control(standin, "faults", {"path": "/v1/payouts", "when": "after", "status": 500})
    with pytest.raises(RazorpayRetryableError):
        pay_out(key)
    payout = pay_out(key)
    assert (payout.status, payout.amount_paisa, payout.purpose) == ("processed", 25_000, "refund")
    assert pay_out(key) == payout
    assert len(standin.store.payouts) == 1
    assert payouts.fetch_payout(payout.id) == payout

    with pytest.raises(RazorpayRejectedError):
        pay_out(key, amount_paisa=26_000)
    other = pay_out(idempotency_key("refund-12", "bank"))
    assert other.id != payout.id and len(standin.store.payouts) == 2


# Errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 409])
def test_server_errors_and_throttling_are_retryable(
    standin: RazorpayStandIn, gateway: RazorpayGateway, status: int
) -> None:
    control(standin, "faults", {"path": "/v1/orders", "status": status})
    with pytest.raises(RazorpayRetryableError) as failed:
        gateway.create_order(amount_paisa=10_000, receipt="x", account_id=ACCOUNT_ID)
    assert failed.value.status == status and failed.value.retryable
    assert gateway.create_order(amount_paisa=10_000, receipt="x", account_id=ACCOUNT_ID)


def test_client_errors_are_final(standin: RazorpayStandIn, gateway: RazorpayGateway) -> None:
    with pytest.raises(RazorpayRejectedError) as unknown:
        gateway.fetch_order("order_DoesNotExist01")
    assert (unknown.value.status, unknown.value.code) == (400, "BAD_REQUEST_ERROR")
    assert not unknown.value.retryable

    wrong_secret = RazorpayGateway(standin.key_id, "not-the-secret", api_url=standin.url)
    with pytest.raises(RazorpayRejectedError) as denied:
        wrong_secret.create_order(amount_paisa=10_000, receipt="x", account_id=ACCOUNT_ID)
    assert denied.value.status == 401

    with pytest.raises(RazorpayRejectedError) as too_small:
        gateway.create_order(amount_paisa=99, receipt="x", account_id=ACCOUNT_ID)
    assert too_small.value.field == "amount"


def test_timeouts_and_refused_connections_are_retryable(standin: RazorpayStandIn) -> None:
    control(standin, "faults", {"path": "/v1/orders/*", "status": None, "delay_seconds": 1.5})
    with pytest.raises(RazorpayRetryableError, match="timed out"):
        impatient(standin).fetch_order("order_DoesNotExist01")

    nowhere = RazorpayGateway("rzp_test_x", "secret", api_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RazorpayRetryableError, match="could not connect"):
        nowhere.fetch_payment("pay_Anything000001")


def test_bad_arguments_fail_before_any_request(
    standin: RazorpayStandIn, gateway: RazorpayGateway
) -> None:
    with pytest.raises(ValueError):
        gateway.create_order(amount_paisa=0, receipt="x", account_id=ACCOUNT_ID)
    with pytest.raises(ValueError):
        gateway.fetch_payment("pay_1/../../orders")
    with pytest.raises(ValueError):
        gateway.refund_payment(payment_id="pay_1", amount_paisa=100, idempotency_key="short")
    assert list(standin.app.requests) == []


def test_settings_configure_the_gateway(standin: RazorpayStandIn) -> None:
    settings = Settings(
        razorpay_key_id=standin.key_id,
        razorpay_key_secret=standin.key_secret,
        razorpay_api_url=standin.url + "/",
    )
    gateway = RazorpayGateway.from_settings(settings)
    assert gateway.key_id == standin.key_id
    assert gateway.create_order(amount_paisa=10_000, receipt="s", account_id=ACCOUNT_ID).id
    with pytest.raises(RazorpayNotConfiguredError):
        RazorpayGateway.from_settings(Settings(razorpay_key_id=None, razorpay_key_secret=None))
