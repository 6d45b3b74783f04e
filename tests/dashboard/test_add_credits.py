"""Add credits on the Billing page in headless Chromium: a preset opens the Razorpay stand-in's
hosted checkout in a new window, Pay there, and the Billing page shows the new balance without
a reload; the transaction links to a printable receipt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.money import format_inr
from tests.dashboard.conftest import make_customer, sign_in
from tests.support.payments import PaymentsStack, payments_stack
from tests.support.stack import temporal_address


@pytest.fixture(scope="module")
def pay(database_url: str, workflow_env: WorkflowEnvironment) -> Iterator[PaymentsStack]:
    with payments_stack(database_url, temporal_address(workflow_env)) as running:
        yield running


async def test_add_credits_through_the_checkout_page(
    page: Page, pay: PaymentsStack, session_factory: sessionmaker[Session]
) -> None:
    base = pay.stack.base_url
    customer = make_customer(session_factory, "Kiran Textiles", welcome_paisa=5_000)
    await sign_in(page, base, customer.api_key)
    available = page.get_by_test_id("available")
    await expect(available).to_have_text(format_inr(5_000))
    await page.evaluate("window.__notReloaded = true")

    # Out of bounds first: the button stays off with a clear message.
    await page.get_by_test_id("credit-custom").fill("99")
    await expect(page.get_by_test_id("credit-pay")).to_be_disabled()
    await expect(page.get_by_test_id("credit-error")).to_contain_text("₹100.00")

    await page.get_by_test_id("preset-1000").click()
    await expect(page.get_by_test_id("credit-chosen")).to_have_text(format_inr(100_000))
    await page.get_by_test_id("credit-save").check()
    async with page.expect_popup() as popup_info:
        await page.get_by_test_id("credit-pay").click()
    popup = await popup_info.value
    await popup.wait_for_load_state()
    await expect(popup.get_by_text(format_inr(100_000))).to_be_visible()
    await expect(page.get_by_test_id("credit-waiting")).to_be_visible()
    await popup.get_by_role("button", name="Pay").click()

    # The Billing page, never reloaded, shows the payment when it lands.
    await expect(available).to_have_text(format_inr(105_000), timeout=10_000)
    await expect(page.get_by_test_id("paid")).to_have_text(format_inr(100_000))
    await expect(page.get_by_test_id("credit-done")).to_contain_text(format_inr(100_000))
    await expect(page.get_by_test_id("credit-new-balance")).to_have_text(format_inr(105_000))
    assert await page.evaluate("window.__notReloaded") is True
    await expect(page.get_by_test_id("auto-recharge-ok")).not_to_contain_text("Buy credits once")

    # The top-up row links to its receipt.
    receipt_link = page.get_by_test_id("tx-receipt").first
    await expect(receipt_link).to_be_visible(timeout=5_000)
    href = await receipt_link.get_attribute("href")
    assert href is not None
    receipt = await page.context.new_page()
    await receipt.goto(base + href)
    await expect(receipt.get_by_test_id("receipt-amount")).to_have_text(format_inr(100_000))
    await expect(receipt.get_by_test_id("receipt-payment-id")).to_contain_text("pay_")
    await expect(receipt.get_by_test_id("receipt-account")).to_contain_text("Kiran Textiles")
    await expect(receipt.get_by_test_id("receipt-method")).to_have_text("card")
    await receipt.close()


async def test_a_failed_payment_adds_nothing(
    page: Page, pay: PaymentsStack, session_factory: sessionmaker[Session]
) -> None:
    base = pay.stack.base_url
    customer = make_customer(session_factory, "Ravi Foods", welcome_paisa=5_000)
    await sign_in(page, base, customer.api_key)
    await page.get_by_test_id("credit-custom").fill("1500.50")
    await expect(page.get_by_test_id("credit-chosen")).to_have_text(format_inr(150_050))
    async with page.expect_popup() as popup_info:
        await page.get_by_test_id("credit-pay").click()
    popup = await popup_info.value
    await popup.wait_for_load_state()
    await popup.get_by_role("button", name="Fail").click()
    await expect(page.get_by_test_id("credit-error")).to_contain_text("failed", timeout=10_000)
    await expect(page.get_by_test_id("available")).to_have_text(format_inr(5_000))
