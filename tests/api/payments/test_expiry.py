"""`CheckoutWorkflow` expires an unpaid checkout at its `expires_at` (CHECKOUT_EXPIRY_SECONDS
sets it for the API's checkouts); a payment that still arrives later is credited, not lost."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from adapters.checkout_events import start_checkout_workflow
from db.session import run_in_transaction
from ledger import payments
from ledger.posting import new_id, utcnow
from tests.api.conftest import Account
from tests.api.payments.conftest import checkout_status, wait_paid
from tests.support.payments import PaymentsStack, eventually
from tests.support.razorpay import sdk


async def test_unpaid_checkout_expires_and_a_late_payment_still_credits(
    pay: PaymentsStack, customer: Account, workflow_env: WorkflowEnvironment
) -> None:
    checkout_id = new_id("chk")
    order = sdk(pay.standin).order.create(
        {"amount": 100_000, "currency": "INR", "receipt": checkout_id, "notes": {}}
    )
    factory = pay.stack.api.app.state.billing.session_factory
    run_in_transaction(
        factory,
        lambda s: payments.create_checkout(
            s,
            checkout_id=checkout_id,
            account_id=customer.id,
            order_id=order["id"],
            amount_paisa=100_000,
            expires_at=utcnow() + timedelta(seconds=2),
        ),
    )
    await start_checkout_workflow(workflow_env.client, order["id"], task_queue=pay.task_queue)
    assert checkout_status(pay, customer, checkout_id) == "created"
    assert eventually(lambda: checkout_status(pay, customer, checkout_id) == "expired", timeout=10)
    pay.control(f"orders/{order['id']}/pay")
    wait_paid(pay, customer, 100_000)
    assert eventually(lambda: checkout_status(pay, customer, checkout_id) == "paid")
