"""The Billing and Calls pages' history features in Chromium: CSV downloads equal the API's
JSON, the month's statement and spend insight, filters with a month picker and call-id search,
the Settings section, a transaction row linking to its call, rows patched in place live."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.money import format_inr
from domain.periods import BILLING_TZ, Month
from ledger.posting import utcnow
from tests.dashboard.conftest import Customer, finish_call, make_customer, screenshot, sign_in
from tests.support.ledger_data import move_history, start_call

CHAT_USAGE: list[dict[str, object]] = [
    {
        "event_id": "c",
        "component": "llm",
        "sku": "openai/gpt-4o-mini",
        "input_tokens": 3000,
        "output_tokens": 400,
    },
]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def last_month() -> Month:
    month = Month.of(utcnow())
    return Month(month.year - 1, 12) if month.month == 1 else Month(month.year, month.month - 1)


def api(customer: Customer, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {customer.api_key}"}, timeout=30
    )


def two_months(factory: sessionmaker[Session], name: str) -> tuple[Customer, dict[str, str]]:
    """Last month: a phone and a chat call; this month: a phone call and a failed web one."""
    customer = make_customer(factory, name, top_up_paisa=200_000)
    calls: dict[str, str] = {}

    def call(
        label: str, channel: str, usage: list[dict[str, object]], outcome: str = "completed"
    ) -> None:
        calls[label] = uid(label)
        start_call(factory, customer.account_id, calls[label], channel, seconds_ago=60)
        finish_call(factory, calls[label], channel, usage, outcome)

    call("old-phone", "phone", TYPICAL_PHONE_CALL_USAGE)
    call("old-chat", "chat", CHAT_USAGE)
    noon = datetime.combine(last_month().first_day.replace(day=10), time(12), BILLING_TZ)
    move_history(factory, customer.account_id, noon.astimezone(UTC))
    call("new-phone", "phone", TYPICAL_PHONE_CALL_USAGE)
    call("new-web", "web", [], "failed")
    return customer, calls


async def downloaded(page: Page, testid: str) -> list[dict[str, str]]:
    async with page.expect_download() as info:
        await page.get_by_test_id(testid).click()
    download = await info.value
    path = await download.path()
    assert download.suggested_filename.endswith(".csv")
    return list(csv.DictReader(io.StringIO(Path(path).read_text())))


async def test_billing_statement_insight_filters_and_export(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer, calls = two_months(session_factory, "Sunita Exports")
    await sign_in(page, dashboard_url, customer.api_key)
    month = last_month()
    async with api(customer, dashboard_url) as http:
        statement = (
            await http.get(f"/v1/accounts/{customer.account_id}/statements/{month}")
        ).json()
        usage = (
            await http.get(
                f"/v1/accounts/{customer.account_id}/usage-summary", params={"month": str(month)}
            )
        ).json()
        listed = (await http.get(f"/v1/accounts/{customer.account_id}/transactions")).json()

    # The statement of the month picked adds up on screen, as the API says.
    await page.get_by_test_id("statement-month").fill(str(month))
    await page.get_by_test_id("statement-month").dispatch_event("change")
    section = page.get_by_test_id("statement")
    await expect(section.get_by_test_id("st-opening")).to_have_text(format_inr(0))
    await expect(section.get_by_test_id("st-closing")).to_have_text(
        format_inr(statement["closing_balance_paisa"])
    )
    await expect(section.get_by_test_id("st-credit-topup")).to_have_text(format_inr(200_000))
    await expect(section.get_by_test_id("st-debit-call_charge")).to_have_text(
        format_inr(statement["debits"]["call_charge"])
    )
    # Where it went: phone first, chat far cheaper.
    channels = {c["channel"]: c for c in usage["by_channel"]}
    insight = page.get_by_test_id("insight-channels")
    await expect(insight.get_by_test_id("spend-phone")).to_have_attribute(
        "data-paisa", str(channels["phone"]["total_paisa"])
    )
    await expect(insight.get_by_test_id("spend-chat")).to_have_attribute(
        "data-paisa", str(channels["chat"]["total_paisa"])
    )
    assert 0 < channels["chat"]["total_paisa"] < channels["phone"]["total_paisa"]
    margin = page.get_by_test_id("insight-components").get_by_test_id("spend-margin")
    await expect(margin).to_have_attribute("data-paisa", str(usage["margin_paisa"]))
    await page.evaluate("document.activeElement.blur()")
    await screenshot(page, "billing", full_page=True)

    # The statement's download is that month's transactions, and they add up.
    rows = await downloaded(page, "statement-csv")
    assert len(rows) == statement["transaction_count"] == 4
    assert sum(int(r["amount_paisa"]) for r in rows) == statement["closing_balance_paisa"]

    # The full history download is the API's JSON.
    rows = await downloaded(page, "tx-csv")
    assert sorted(int(r["id"]) for r in rows) == sorted(t["id"] for t in listed["items"])

    # Filters: calls of last month only, then a search by call id; the download follows.
    await page.get_by_test_id("tx-type").select_option("call_charge")
    await page.get_by_test_id("tx-month").fill(str(month))
    await page.get_by_test_id("tx-month").dispatch_event("change")
    body = page.locator("#tx-body tr")
    await expect(body).to_have_count(2)
    assert "type=call_charge" in page.url and f"month={month}" in page.url
    rows = await downloaded(page, "tx-csv")
    assert {r["call_id"] for r in rows} == {calls["old-phone"], calls["old-chat"]}
    await page.get_by_test_id("tx-call-id").fill(calls["old-chat"][:-4])
    await expect(body).to_have_count(1)
    link = body.first.get_by_test_id("tx-call-link")
    await expect(link).to_have_attribute("href", f"/calls?call={calls['old-chat']}")
    await page.get_by_test_id("tx-month").fill("")
    await page.get_by_test_id("tx-month").dispatch_event("change")
    await page.get_by_test_id("tx-call-id").fill("no-such-call")
    await expect(body.first).to_have_text("No transactions match these filters.")
    await page.get_by_test_id("tx-call-id").fill(calls["old-chat"])
    link = body.get_by_test_id("tx-call-link")
    await expect(link).to_have_count(1)
    await expect(link).to_have_attribute("href", f"/calls?call={calls['old-chat']}")

    # A transaction row opens its call's breakdown on the Calls page.
    async with page.expect_navigation(url=f"**/calls?call={calls['old-chat']}"):
        await link.click()
    detail = page.get_by_test_id("call-detail")
    await expect(detail.get_by_test_id("detail-call-id")).to_have_text(calls["old-chat"])
    await expect(detail.get_by_test_id("bd-sip")).to_have_text("₹0.00")


async def test_bad_month_and_filters_show_the_api_refusal(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Filter Checks")
    await sign_in(page, dashboard_url, customer.api_key)
    # A month in the future (typed past the picker's max) is refused with the API's reason.
    await page.goto(dashboard_url + "/billing")
    await page.evaluate(
        """() => { const m = document.getElementById('statement-month');
                   m.removeAttribute('max'); m.value = '2999-01';
                   m.dispatchEvent(new Event('change')); }"""
    )
    await expect(page.get_by_test_id("month-error")).to_contain_text("2999-01 is in the future")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=dashboard_url, cookies=cookies) as http:
        for path, params, code in (
            ("/dashboard/api/transactions", {"type": "bogus"}, "invalid_filter"),
            (
                "/dashboard/api/calls",
                {"from": "2026-02-10", "to": "2026-02-01"},
                "invalid_date_range",
            ),
            ("/dashboard/api/calls.csv", {"channel": "fax"}, "invalid_filter"),
            ("/dashboard/api/statement", {"month": "2999-01"}, "month_in_future"),
        ):
            response = await http.get(path, params=params)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["code"] == code


async def test_settings_section_changes_the_alert_threshold(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Kavya Settings", top_up_paisa=100_000)
    await sign_in(page, dashboard_url, customer.api_key)
    threshold = page.get_by_test_id("alert-threshold")
    await expect(threshold).to_have_value("")  # the minimum balance
    await expect(page.get_by_test_id("min-balance")).to_have_text("₹10.00")
    await expect(page.get_by_test_id("alert-email")).to_have_text("kavya@example.com")

    await threshold.fill("1,500.50")
    await page.get_by_test_id("save-settings").click()
    await expect(page.get_by_test_id("settings-done")).to_have_text(
        "Saved: alerts below ₹1,500.50."
    )
    async with api(customer, dashboard_url) as http:
        account = (await http.get(f"/v1/accounts/{customer.account_id}")).json()
    assert account["alert_threshold_paisa"] == 150_050

    await threshold.fill("10000001")  # ₹1,00,00,001: over the ₹10,00,000 limit
    await page.get_by_test_id("save-settings").click()
    await expect(page.get_by_test_id("settings-error")).to_contain_text("alert_threshold_paisa")
    await threshold.fill("-5")
    await page.get_by_test_id("save-settings").click()
    await expect(page.get_by_test_id("settings-error")).to_contain_text("Enter an amount")
    await page.reload()
    await expect(threshold).to_have_value("1500.50")
    await threshold.fill("")
    await page.get_by_test_id("save-settings").click()
    await expect(page.get_by_test_id("settings-done")).to_have_text("Saved: alerts below ₹10.00.")


async def test_calls_filters_export_and_rows_patched_in_place(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer, calls = two_months(session_factory, "Imran Calls")
    await sign_in(page, dashboard_url, customer.api_key)
    await page.get_by_test_id("nav-calls").click()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "open")
    rows = page.locator("#calls-body tr[data-call-id]")
    await expect(rows).to_have_count(4)

    await page.get_by_test_id("call-channel").select_option("phone")
    await expect(rows).to_have_count(2)
    await page.get_by_test_id("call-month").fill(str(last_month()))
    await page.get_by_test_id("call-month").dispatch_event("change")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-call-id", calls["old-phone"])
    exported = await downloaded(page, "calls-csv")
    assert [r["call_id"] for r in exported] == [calls["old-phone"]]
    assert int(exported[0]["total_paisa"]) == 442
    await page.get_by_test_id("call-month").fill("")
    await page.get_by_test_id("call-month").dispatch_event("change")
    await page.get_by_test_id("call-channel").select_option("")
    await page.get_by_test_id("call-outcome").select_option("failed")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-call-id", calls["new-web"])
    await page.get_by_test_id("call-outcome").select_option("")
    await page.get_by_test_id("call-search").fill(calls["new-phone"][:-3])
    await expect(rows).to_have_count(1)
    await page.get_by_test_id("call-search").fill("")
    await expect(rows).to_have_count(4)

    # Live: a new call is inserted and then updated in place; the focused row keeps focus
    # (the same element, never re-rendered).
    await page.get_by_test_id("call-channel").select_option("phone")
    await expect(rows).to_have_count(2)
    focused = rows.first
    await focused.focus()
    await focused.evaluate("(tr) => { tr.__marker = 'kept'; }")
    await page.evaluate("window.__noReload = true")
    live_id, chat_id = uid("live-phone"), uid("live-chat")
    start_call(session_factory, customer.account_id, live_id, "phone", seconds_ago=5)
    start_call(session_factory, customer.account_id, chat_id, "chat", seconds_ago=5)
    row = page.locator(f'#calls-body tr[data-call-id="{live_id}"]')
    await expect(row.get_by_test_id("call-status")).to_have_text("In progress")
    await row.evaluate("(tr) => { tr.__marker = 'same-row'; }")
    finish_call(session_factory, live_id, "phone", TYPICAL_PHONE_CALL_USAGE)
    await expect(row.get_by_test_id("call-status")).to_have_text("Completed")
    await expect(row.get_by_test_id("call-cost")).to_have_text("₹4.42")
    assert await row.evaluate("(tr) => tr.__marker") == "same-row"
    assert await page.evaluate("document.activeElement.__marker") == "kept"
    # The chat call does not match the channel filter: never shown.
    await expect(page.locator(f'#calls-body tr[data-call-id="{chat_id}"]')).to_have_count(0)
    assert await page.evaluate("window.__noReload") is True


async def test_narrow_screen_drawer_and_reduced_motion(
    dashboard_url: str, session_factory: sessionmaker[Session], browser: Any
) -> None:
    customer, calls = two_months(session_factory, "Narrow Screen Co")
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        locale="en-IN",
        reduced_motion="reduce",
        is_mobile=True,
        has_touch=True,
    )
    phone = await context.new_page()
    errors: list[str] = []
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await sign_in(phone, dashboard_url, customer.api_key)
        sidebar = phone.get_by_test_id("sidebar")
        await expect(sidebar).not_to_be_in_viewport()
        await phone.get_by_test_id("menu-toggle").click()
        await expect(sidebar).to_be_in_viewport()
        await phone.get_by_test_id("nav-calls").click()
        await phone.wait_for_url("**/calls")
        await expect(phone.get_by_test_id("sidebar")).not_to_be_in_viewport()
        wrap = phone.locator(".table-wrap").first
        assert await wrap.evaluate("(w) => getComputedStyle(w).overflowX") == "auto"
        # Wide tables scroll inside their card; the page itself never scrolls sideways.
        no_side_scroll = "() => document.documentElement.scrollWidth <= window.innerWidth"
        assert await phone.evaluate(no_side_scroll)
        row = phone.locator(f'#calls-body tr[data-call-id="{calls["new-phone"]}"]')
        await row.click()
        drawer = phone.get_by_test_id("call-detail")
        await expect(drawer.get_by_test_id("bd-total")).to_have_text("₹4.42")
        assert await drawer.evaluate("(d) => getComputedStyle(d).position") == "fixed"
        box = await drawer.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 391 and box["height"] >= 800
        # prefers-reduced-motion: no animations anywhere.
        assert await drawer.evaluate("(d) => getComputedStyle(d).animationName") == "none"
        await screenshot(phone, "calls-narrow")
        await phone.keyboard.press("Escape")
        await expect(drawer).to_be_hidden()
        await phone.goto(dashboard_url + "/billing")
        await expect(phone.get_by_test_id("available")).to_be_visible()
        assert await phone.evaluate(no_side_scroll)
        await screenshot(phone, "billing-narrow")
    finally:
        await context.close()
    assert not errors, errors
