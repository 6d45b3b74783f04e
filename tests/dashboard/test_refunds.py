"""A customer who bought credits through the checkout page is refunded part of them (support,
through the API); the Billing page, never reloaded, shows the refund and where each part went:
back to the card payment, and by bank payout for the credit an admin top-up added. Headless
Chromium, the real API and worker, the Razorpay stand-in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.money import format_inr
from tests.api.conftest import create_key
from tests.dashboard.conftest import make_customer, sign_in
from tests.support.payments import PaymentsStack, payments_stack
from tests.support.stack import temporal_address


@pytest.fixture(scope="module")
def pay(database_url: str, workflow_env: WorkflowEnvironment) -> Iterator[PaymentsStack]:
    with payments_stack(database_url, temporal_address(workflow_env)) as running:
        yield running


async def test_a_refund_and_its_parts_on_the_billing_page(
    page: Page, pay: PaymentsStack, session_factory: sessionmaker[Session]
) -> None:
    base = pay.stack.base_url
    # ₹100 by bank transfer (an admin top-up) before the customer bought credits.
    customer = make_customer(session_factory, "Meena Tiffins", top_up_paisa=10_000)
    await sign_in(page, base, customer.api_key)
    refunds = page.get_by_test_id("refunds")
    await expect(refunds).to_be_hidden()  # nothing refunded yet
    await page.evaluate("window.__notReloaded = true")

    await page.get_by_test_id("preset-1000").click()
    async with page.expect_popup() as popup_info:
        await page.get_by_test_id("credit-pay").click()
    popup = await popup_info.value
    await popup.wait_for_load_state()
    await popup.get_by_role("button", name="Pay").click()
    await expect(page.get_by_test_id("paid")).to_have_text(format_inr(110_000), timeout=10_000)

    # Support refunds ₹1,050 of the ₹1,100 paid.
    with pay.stack.client(create_key(pay.stack, "support")) as http:
        response = http.post(
            f"/v1/accounts/{customer.account_id}/refunds",
            json={"amount_paisa": 105_000},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    assert response.status_code == 202, response.text
    refund_id = response.json()["id"]

    row = page.locator(f'[data-testid="refund"][data-refund-id="{refund_id}"]')
    await expect(refunds).to_be_visible(timeout=10_000)
    await expect(row.get_by_test_id("refund-status")).to_have_text("completed", timeout=15_000)
    await expect(row.get_by_test_id("refund-amount")).to_have_text(format_inr(105_000))
    parts = page.get_by_test_id("refund-part")
    await expect(parts).to_have_count(2)
    card, bank = parts.nth(0), parts.nth(1)
    await expect(card).to_have_attribute("data-kind", "gateway")
    await expect(card).to_contain_text("To card payment pay_")
    await expect(card).to_contain_text(format_inr(100_000))
    await expect(card.get_by_test_id("refund-part-status")).to_have_text("processed")
    await expect(bank).to_have_attribute("data-kind", "payout")
    await expect(bank).to_contain_text("Bank transfer")
    await expect(bank).to_contain_text(format_inr(5_000))
    await expect(bank.get_by_test_id("refund-part-status")).to_have_text("processed")
    await expect(page.get_by_test_id("paid")).to_have_text(format_inr(5_000))
    assert await page.evaluate("window.__notReloaded") is True
