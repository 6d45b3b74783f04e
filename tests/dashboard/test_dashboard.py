"""The dashboard in headless Chromium against a real server and PostgreSQL: sign-in, the
Billing numbers, coupon preview-then-confirm, and calls appearing live with a breakdown that
adds up on screen."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from db.session import run_in_transaction
from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.money import format_inr
from ledger import accounts as ledger_accounts
from ledger import api_keys, balances, coupons
from ledger import calls as ledger_calls
from tests.dashboard.conftest import (
    finish_call,
    make_customer,
    sign_in,
    start_call,
)
from tests.support.stack import RunningStack

WEB_CALL_USAGE: list[dict[str, object]] = [
    {
        "event_id": "l",
        "component": "llm",
        "sku": "openai/gpt-4o-mini",
        "input_tokens": 9000,
        "output_tokens": 700,
    },
    {"event_id": "s", "component": "stt", "sku": "deepgram/nova-3", "audio_seconds": 31},
    {"event_id": "t", "component": "tts", "sku": "elevenlabs/flash-v2", "characters": 260},
]


def paisa_of(text: str) -> int:
    """'₹1,23,456.78' -> 12345678; the inverse of format_inr, strict."""
    match = re.fullmatch(r"(-?)₹(\d{1,3}(?:,\d\d)*(?:,\d{3})|\d{1,3})\.(\d\d)", text.strip())
    assert match, f"not an INR amount: {text!r}"
    sign, rupees, paisa = match.groups()
    value = int(rupees.replace(",", "")) * 100 + int(paisa)
    return -value if sign else value


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_js_money_formatter_matches_python(page: Page, dashboard_url: str) -> None:
    await page.goto(dashboard_url + "/login")
    await page.add_script_tag(url=dashboard_url + "/dashboard/static/money.js")
    values = [
        0,
        5,
        99,
        100,
        442,
        12345,
        100000,
        9999999,
        10000000,
        1234567890,
        -442,
        -10000000,
        123456789012345,
    ]
    shown = await page.evaluate("(vs) => vs.map((v) => window.formatINR(v))", values)
    assert shown == [format_inr(v) for v in values]
    assert shown[8] == "₹1,00,000.00"


async def test_sign_in_only_with_a_valid_customer_key(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Meera Stores", top_up_paisa=20000)
    _, admin_secret = run_in_transaction(
        session_factory, lambda s: api_keys.create_api_key(s, role="admin")
    )
    await page.goto(dashboard_url + "/billing")
    await expect(page).to_have_url(dashboard_url + "/login")  # not signed in: sent to sign-in

    for bad, message in (
        ("osk_not-a-real-key", "not valid"),
        (admin_secret, "Only customer API keys"),
    ):
        await page.get_by_test_id("api-key").fill(bad)
        await page.get_by_test_id("sign-in").click()
        await expect(page.get_by_test_id("login-error")).to_contain_text(message)
        await expect(page).to_have_url(dashboard_url + "/login")

    await sign_in(page, dashboard_url, customer.api_key)
    await expect(page.get_by_test_id("account-name")).to_have_text("Meera Stores")
    cookies = await page.context.cookies()
    assert cookies and all(customer.api_key not in c["value"] for c in cookies)
    assert customer.api_key not in page.url

    # The JSON behind the pages needs the session, and POSTs need its CSRF token too.
    async with httpx.AsyncClient(base_url=dashboard_url) as anonymous:
        assert (await anonymous.get("/dashboard/api/summary")).status_code == 401
    jar = {c["name"]: c["value"] for c in cookies}
    async with httpx.AsyncClient(base_url=dashboard_url, cookies=jar) as signed:
        assert (await signed.get("/dashboard/api/summary")).status_code == 200
        forged = await signed.post("/dashboard/api/coupons/preview", json={"code": "X"})
        assert forged.status_code == 403

    # Revoking the key ends its dashboard sessions: the open page is sent to sign-in.
    run_in_transaction(
        session_factory,
        lambda s: api_keys.revoke_api_key(s, api_keys.resolve_api_key(s, customer.api_key).id),  # type: ignore[union-attr]
    )
    await expect(page).to_have_url(dashboard_url + "/login", timeout=15000)
    await page.goto(dashboard_url + "/billing")
    await expect(page).to_have_url(dashboard_url + "/login")


async def test_billing_page_shows_the_numbers_the_api_returns(
    page: Page, dashboard_stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    dashboard_url = dashboard_stack.base_url
    customer = make_customer(session_factory, "Asha Traders", top_up_paisa=12345678)
    charged = 0
    for n in range(22):  # more than one page of history
        call_id = uid(f"hist{n}")
        start_call(session_factory, customer.account_id, call_id, "phone")
        charged += finish_call(session_factory, call_id, "phone", TYPICAL_PHONE_CALL_USAGE)
    start_call(session_factory, customer.account_id, uid("live"), "web")  # holds ₹10

    await sign_in(page, dashboard_url, customer.api_key)
    async with httpx.AsyncClient(
        base_url=dashboard_url, headers={"Authorization": f"Bearer {customer.api_key}"}
    ) as http:
        response = await http.get(f"/v1/accounts/{customer.account_id}/balance")
        assert response.status_code == 200, response.text
        api = response.json()
        history = (await http.get(f"/v1/accounts/{customer.account_id}/transactions")).json()
    assert api["month_usage_paisa"] == charged == 22 * 442
    assert api["reserved_paisa"] == 1000
    for testid, field in (
        ("available", "available_paisa"),
        ("promo", "promo_paisa"),
        ("paid", "paid_paisa"),
        ("reserved", "reserved_paisa"),
        ("month-usage", "month_usage_paisa"),
    ):
        await expect(page.get_by_test_id(testid)).to_have_text(format_inr(api[field]))
    # Promo (₹50.00) went first; the remaining ₹47.24 of charges came out of ₹1,23,456.78 paid.
    await expect(page.get_by_test_id("promo")).to_have_text("₹0.00")
    await expect(page.get_by_test_id("paid")).to_have_text("₹1,23,409.54")
    await expect(page.get_by_test_id("low-balance-banner")).to_be_hidden()
    shown_amounts = await page.locator("#tx-body tr td:nth-child(4)").all_inner_texts()
    api_amounts = [tx["amount_paisa"] for tx in history["items"]][: len(shown_amounts)]
    assert [paisa_of(t.lstrip("+")) for t in shown_amounts] == api_amounts

    # Today's bar carries this month's charges; the history is paged, newest first.
    today_bars = page.locator("#chart rect.bar.today")
    await expect(today_bars).to_have_count(1)
    assert int(await today_bars.get_attribute("data-paisa") or "-1") == charged
    rows = page.locator("#tx-body tr")
    await expect(rows).to_have_count(20)
    await expect(rows.first.locator("td").nth(3)).to_have_text("-₹4.42")
    await page.get_by_test_id("tx-older").click()
    await expect(rows).to_have_count(4)  # 22 calls + top-up + welcome = 24 transactions
    await expect(rows.last.locator("td").nth(2)).to_have_text("Welcome bonus")
    await expect(page.get_by_test_id("tx-older")).to_be_hidden()
    await page.get_by_test_id("tx-newest").click()
    await expect(rows).to_have_count(20)


async def test_coupon_is_redeemed_through_preview_then_confirm(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Ravi Kumar", top_up_paisa=50000)
    code = uid("DIWALI").upper()
    run_in_transaction(
        session_factory, lambda s: coupons.create_coupon(s, code=code, bonus_paisa=7550)
    )
    await sign_in(page, dashboard_url, customer.api_key)
    await page.evaluate("window.__noReload = true")
    await expect(page.get_by_test_id("promo")).to_have_text("₹50.00")

    await page.get_by_test_id("open-redeem").click()
    await page.get_by_test_id("coupon-code").fill(code.lower())  # codes are case-sensitive
    await page.get_by_test_id("coupon-check").click()
    await expect(page.get_by_test_id("coupon-error")).to_contain_text("case-sensitive")
    await expect(page.get_by_test_id("coupon-confirm")).to_be_hidden()

    await page.get_by_test_id("coupon-code").fill(code)
    await page.get_by_test_id("coupon-check").click()
    await expect(page.get_by_test_id("coupon-bonus")).to_have_text("₹75.50")
    # Previewing changed nothing.
    promo_before = run_in_transaction(
        session_factory, lambda s: balances.balance_summary(s, customer.account_id)
    ).balance.promo_paisa
    assert promo_before == 5000
    await expect(page.get_by_test_id("promo")).to_have_text("₹50.00")

    await page.get_by_test_id("coupon-confirm").click()
    await expect(page.get_by_test_id("coupon-done")).to_contain_text("₹75.50 added")
    await expect(page.get_by_test_id("promo")).to_have_text("₹125.50")
    await expect(page.get_by_test_id("available")).to_have_text("₹625.50")
    after = run_in_transaction(
        session_factory, lambda s: balances.balance_summary(s, customer.account_id)
    ).balance
    assert after.promo_paisa == 12550
    await page.get_by_test_id("coupon-cancel").click()
    first = page.locator("#tx-body tr").first
    await expect(first.locator("td").nth(2)).to_have_text(f"Coupon {code}")
    await expect(first.locator("td").nth(3)).to_have_text("+₹75.50")
    assert await page.evaluate("window.__noReload") is True

    # Once per account: a second preview is refused with the reason.
    await page.get_by_test_id("open-redeem").click()
    await page.get_by_test_id("coupon-code").fill(code)
    await page.get_by_test_id("coupon-check").click()
    await expect(page.get_by_test_id("coupon-error")).to_contain_text("already redeemed")


async def test_low_balance_banner_under_ten_rupees(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Low Balance Co", welcome_paisa=950)
    await sign_in(page, dashboard_url, customer.api_key)
    banner = page.get_by_test_id("low-balance-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("New calls are refused until you top up")
    await expect(banner).to_contain_text("₹10.00")
    # A top-up lifts it live, without a reload.
    run_in_transaction(
        session_factory,
        lambda s: ledger_accounts.top_up(
            s, account_id=customer.account_id, amount_paisa=10000, payment_reference=uid("p")
        ),
    )
    await expect(banner).to_be_hidden()
    await expect(page.get_by_test_id("available")).to_have_text("₹109.50")


async def test_calls_page_updates_live_and_breakdown_adds_up(
    page: Page, dashboard_url: str, session_factory: sessionmaker[Session]
) -> None:
    customer = make_customer(session_factory, "Kiran Logistics", top_up_paisa=250000)
    for channel, outcome, usage, seconds in (
        ("web", "completed", WEB_CALL_USAGE, 95),
        ("phone", "no_answer", [], 31),
        ("whatsapp", "voicemail", WEB_CALL_USAGE[:1], 12),
    ):
        call_id = uid(channel)
        start_call(session_factory, customer.account_id, call_id, channel, seconds_ago=seconds)
        finish_call(session_factory, call_id, channel, usage, outcome)

    await sign_in(page, dashboard_url, customer.api_key)
    await page.get_by_test_id("nav-calls").click()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "open")
    rows = page.locator("#calls-body tr")
    await expect(rows).to_have_count(3)
    await page.evaluate("window.__noReload = true")

    call_id = uid("phone")
    start_call(session_factory, customer.account_id, call_id, "phone", seconds_ago=61)
    row = page.locator(f'#calls-body tr[data-call-id="{call_id}"]')
    await expect(row.get_by_test_id("call-status")).to_have_text("In progress")
    await expect(rows).to_have_count(4)
    await expect(page.get_by_test_id("reserved")).to_have_count(0)  # not on this page
    total = finish_call(session_factory, call_id, "phone", TYPICAL_PHONE_CALL_USAGE)
    assert total == 442
    await expect(row.get_by_test_id("call-status")).to_have_text("Completed")
    await expect(row.get_by_test_id("call-cost")).to_have_text("₹4.42")
    assert await page.evaluate("window.__noReload") is True

    await row.click()
    detail = page.get_by_test_id("call-detail")
    await expect(detail.get_by_test_id("detail-call-id")).to_have_text(call_id)
    shown = {}
    for part in ("llm", "stt", "tts", "sip", "provider-total", "margin", "total"):
        shown[part] = paisa_of(await detail.get_by_test_id(f"bd-{part}").inner_text())
    assert shown["llm"] + shown["stt"] + shown["tts"] + shown["sip"] == shown["provider-total"]
    assert shown["provider-total"] + shown["margin"] == shown["total"]
    assert shown == {
        "llm": 40,
        "stt": 50,
        "tts": 220,
        "sip": 30,
        "provider-total": 340,
        "margin": 102,
        "total": 442,
    }
    await expect(detail).to_contain_text("+ 30% margin")
    await expect(detail.get_by_test_id("usage-llm")).to_have_count(2)  # input + output tokens
    await expect(detail.get_by_test_id("usage-sip")).to_contain_text("plivo/in-outbound")
    await expect(detail.get_by_test_id("usage-tts")).to_contain_text("550 characters × ₹0.004")

    # Durations come from the call's own start and end.
    stored = run_in_transaction(session_factory, lambda s: ledger_calls.get_call(s, call_id))
    assert stored.ended_at is not None and stored.started_at is not None
    seconds = int((stored.ended_at - stored.started_at).total_seconds())
    assert seconds >= 61
    await expect(row.locator("td.duration")).to_have_text(f"{seconds // 60}:{seconds % 60:02d}")
    # A call still in progress: its row ticks, and its hold shows as reserved on Billing.
    active_id = uid("web")
    start_call(session_factory, customer.account_id, active_id, "web", seconds_ago=3)
    active = page.locator(f'#calls-body tr[data-call-id="{active_id}"]')
    await expect(active.get_by_test_id("call-status")).to_have_text("In progress")
    # Newest start first: the call started 3 s ago heads the table.
    await expect(rows.first).to_have_attribute("data-call-id", active_id)
    await page.get_by_test_id("nav-billing").click()
    await expect(page.locator("#chart rect.bar.today")).to_have_count(1)
    await expect(page.get_by_test_id("reserved")).to_have_text("₹10.00")


async def test_call_through_the_orchestrator_api_appears_live(
    page: Page, dashboard_stack: RunningStack
) -> None:
    """End to end: a call authorized, metered and hung up through the orchestrator HTTP API
    (Temporal workflow, worker, ledger) shows up on the open Calls page without a reload."""
    assert dashboard_stack.worker is not None, "the billing worker (python -m worker) is missing"
    admin = {"Authorization": f"Bearer {dashboard_stack.admin_key}"}
    async with httpx.AsyncClient(base_url=dashboard_stack.base_url, timeout=30) as http:
        created = await http.post(
            "/v1/accounts",
            json={"name": "Neha Clinics", "email": "neha@example.com"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        account_id = created.json()["account"]["id"]
        customer_key = created.json()["api_key"]["key"]
        topup = await http.post(
            f"/v1/accounts/{account_id}/topups",
            json={"amount_paisa": 100000, "payment_reference": uid("pay")},
            headers=admin,
        )
        assert topup.status_code == 201, topup.text
        key = await http.post("/v1/api-keys", json={"role": "orchestrator"}, headers=admin)
        assert key.status_code == 201, key.text
        orchestrator = {"Authorization": f"Bearer {key.json()['key']}"}

        await sign_in(page, dashboard_stack.base_url, customer_key)
        await page.get_by_test_id("nav-calls").click()
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "open")
        await page.evaluate("window.__noReload = true")

        call_id = uid("e2e")
        authorized = await http.post(
            "/v1/calls",
            json={"call_id": call_id, "account_id": account_id, "channel": "phone"},
            headers=orchestrator,
        )
        assert authorized.status_code == 200, authorized.text
        assert authorized.json()["authorized"] is True
        row = page.locator(f'#calls-body tr[data-call-id="{call_id}"]')
        await expect(row.get_by_test_id("call-status")).to_have_text("In progress")

        usage = await http.post(
            f"/v1/calls/{call_id}/usage", json=TYPICAL_PHONE_CALL_USAGE, headers=orchestrator
        )
        assert usage.status_code in (200, 202), usage.text
        # While the call is in progress the row shows its running cost (workflow status query).
        await expect(row.get_by_test_id("call-cost")).to_have_text("₹4.42 so far", timeout=10000)
        await expect(row.get_by_test_id("call-status")).to_have_text("In progress")
        hangup = await http.post(
            f"/v1/calls/{call_id}/hangup", json={"outcome": "completed"}, headers=orchestrator
        )
        assert hangup.status_code in (200, 202), hangup.text

        await expect(row.get_by_test_id("call-status")).to_have_text("Completed", timeout=15000)
        await expect(row.get_by_test_id("call-cost")).to_have_text("₹4.42")
        assert await page.evaluate("window.__noReload") is True

        await row.click()
        detail = page.get_by_test_id("call-detail")
        await expect(detail.get_by_test_id("detail-call-id")).to_have_text(call_id)
        shown = {
            part: paisa_of(await detail.get_by_test_id(f"bd-{part}").inner_text())
            for part in ("llm", "stt", "tts", "sip", "provider-total", "margin", "total")
        }
        assert shown["llm"] + shown["stt"] + shown["tts"] + shown["sip"] == shown["provider-total"]
        assert shown["provider-total"] + shown["margin"] == shown["total"]
        api_call = (
            await http.get(
                f"/v1/calls/{call_id}", headers={"Authorization": f"Bearer {customer_key}"}
            )
        ).json()
        breakdown = api_call["breakdown"]
        assert shown == {
            "llm": breakdown["llm_paisa"],
            "stt": breakdown["stt_paisa"],
            "tts": breakdown["tts_paisa"],
            "sip": breakdown["sip_paisa"],
            "provider-total": breakdown["provider_total_paisa"],
            "margin": breakdown["margin_paisa"],
            "total": breakdown["total_paisa"],
        }
        assert shown["total"] == 442
