"""Late usage (contract §3) on the open Calls page in Chromium: a call metered and hung up
through the orchestrator HTTP API (Temporal workflow, worker, ledger), then usage for it
reported after the hangup. Without a reload the call's row shows the re-priced total on the same
element (focus kept), its open breakdown shows the adjustment, and the Billing page lists the
`call_adjustment` linking back to the call."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.money import format_inr
from tests.dashboard.conftest import finish_call, screenshot, sign_in, start_call
from tests.support.stack import RunningStack

PARTS = ("llm", "stt", "tts", "sip", "provider-total", "margin", "total")
# A last LLM turn whose token count arrives after the hangup.
LATE_LLM: dict[str, Any] = {
    "event_id": "late-llm-1",
    "component": "llm",
    "sku": "openai/gpt-4o-mini",
    "input_tokens": 40_000,
    "output_tokens": 20_000,
}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def shown_breakdown(page: Page) -> dict[str, int]:
    detail = page.get_by_test_id("call-detail")
    return {
        part: int(await detail.get_by_test_id(f"bd-{part}").get_attribute("data-paisa") or "")
        for part in PARTS
    }


def as_shown(breakdown: dict[str, int]) -> dict[str, int]:
    return {
        "llm": breakdown["llm_paisa"],
        "stt": breakdown["stt_paisa"],
        "tts": breakdown["tts_paisa"],
        "sip": breakdown["sip_paisa"],
        "provider-total": breakdown["provider_total_paisa"],
        "margin": breakdown["margin_paisa"],
        "total": breakdown["total_paisa"],
    }


async def test_late_usage_updates_the_open_calls_page_in_place(
    page: Page, dashboard_stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    assert dashboard_stack.worker is not None, "the billing worker (python -m worker) is missing"
    base = dashboard_stack.base_url
    admin = bearer(dashboard_stack.admin_key)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        created = await http.post(
            "/v1/accounts", json={"name": "Farah Late", "email": "farah@example.com"}, headers=admin
        )
        assert created.status_code == 201, created.text
        account_id = created.json()["account"]["id"]
        customer = bearer(created.json()["api_key"]["key"])
        topup = await http.post(
            f"/v1/accounts/{account_id}/topups",
            json={"amount_paisa": 100_000, "payment_reference": uid("pay")},
            headers=admin,
        )
        assert topup.status_code == 201, topup.text
        key = await http.post("/v1/api-keys", json={"role": "orchestrator"}, headers=admin)
        assert key.status_code == 201, key.text
        orchestrator = bearer(key.json()["key"])

        # Two earlier calls, so the adjusted row sits among others (and the picture is real).
        for channel, seconds in (("web", 900), ("chat", 600)):
            earlier = uid(channel)
            start_call(session_factory, account_id, earlier, channel, seconds_ago=seconds)
            finish_call(session_factory, earlier, channel, TYPICAL_PHONE_CALL_USAGE[:1])

        # The call, end to end through the orchestrator API, finished before the page opens.
        call_id = uid("late")
        authorized = await http.post(
            "/v1/calls",
            json={"call_id": call_id, "account_id": account_id, "channel": "phone"},
            headers=orchestrator,
        )
        assert authorized.status_code == 200 and authorized.json()["authorized"], authorized.text
        usage = await http.post(
            f"/v1/calls/{call_id}/usage", json=TYPICAL_PHONE_CALL_USAGE, headers=orchestrator
        )
        assert usage.status_code == 202, usage.text
        hangup = await http.post(
            f"/v1/calls/{call_id}/hangup", json={"outcome": "completed"}, headers=orchestrator
        )
        assert hangup.status_code == 202, hangup.text
        await expect_finalized(http, call_id, customer)

        await sign_in(page, base, created.json()["api_key"]["key"])
        await page.get_by_test_id("nav-calls").click()
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "open")
        rows = page.locator("#calls-body tr[data-call-id]")
        await expect(rows).to_have_count(3)
        row = page.locator(f'#calls-body tr[data-call-id="{call_id}"]')
        cost = row.get_by_test_id("call-cost")
        detail = page.get_by_test_id("call-detail")

        # Before: the charge at hangup, in the row and in the open breakdown.
        await row.click()
        await expect(detail.get_by_test_id("detail-call-id")).to_have_text(call_id)
        await expect(cost).to_have_text("₹4.42")
        await expect(detail.get_by_test_id("bd-total")).to_have_text("₹4.42")
        before = await shown_breakdown(page)
        assert before["total"] == 442
        await expect(detail.get_by_test_id("charge-row")).to_have_count(1)
        await expect(detail.get_by_test_id("detail-adjustment")).to_have_count(0)
        await expect(detail.get_by_test_id("usage-llm").first).to_contain_text("24,000 input")

        # The row keeps focus and identity across the update; no navigation happens.
        await row.focus()
        await row.evaluate("(tr) => { tr.__marker = 'same-row'; }")
        await page.evaluate("window.__noReload = true")  # gone if the page were reloaded

        late = await http.post(f"/v1/calls/{call_id}/usage", json=LATE_LLM, headers=orchestrator)
        assert late.status_code == 202, late.text
        adjustment = late.json()["adjustment_paisa"]
        assert adjustment > 0
        after_total = 442 + adjustment

        # After: the same row, patched live, and the open breakdown re-read.
        await expect(cost).to_have_text(format_inr(after_total))
        await expect(detail.get_by_test_id("bd-total")).to_have_text(format_inr(after_total))
        await expect(detail.get_by_test_id("detail-adjustment")).to_have_attribute(
            "data-paisa", str(adjustment)
        )
        await expect(detail.get_by_test_id("detail-adjustment")).to_contain_text(
            format_inr(adjustment)
        )
        charges = detail.get_by_test_id("charge-row")
        await expect(charges).to_have_count(2)
        await expect(charges.nth(0)).to_have_attribute("data-kind", "call_charge")
        await expect(charges.nth(1)).to_have_attribute("data-kind", "call_adjustment")
        await expect(charges.nth(1).locator("td")).to_have_text(format_inr(adjustment))
        # The late tokens are in the usage lines; only the LLM (and margin) moved.
        await expect(detail.get_by_test_id("usage-llm").first).to_contain_text("64,000 input")
        after = await shown_breakdown(page)
        for part in ("stt", "tts", "sip"):
            assert after[part] == before[part]
        assert after["llm"] > before["llm"] and after["total"] == after_total
        assert after["llm"] + after["stt"] + after["tts"] + after["sip"] == after["provider-total"]
        assert after["provider-total"] + after["margin"] == after["total"]
        call = (await http.get(f"/v1/calls/{call_id}", headers=customer)).json()
        assert as_shown(call["breakdown"]) == after
        assert await row.evaluate("(tr) => tr.__marker") == "same-row"
        assert await page.evaluate("document.activeElement.__marker") == "same-row"
        assert await page.evaluate("window.__noReload") is True
        await expect(rows).to_have_count(3)

        # A repeated event id changes nothing, on the page either.
        again = await http.post(f"/v1/calls/{call_id}/usage", json=LATE_LLM, headers=orchestrator)
        assert again.status_code == 202 and again.json()["adjustment_paisa"] == 0, again.text
        await page.evaluate("document.activeElement.blur()")
        await screenshot(page, "calls", full_page=True)

        # The breakdown is the sum of the call's transactions (API).
        listed = (
            await http.get(f"/v1/accounts/{account_id}/transactions", headers=customer)
        ).json()
        mine = [t for t in listed["items"] if t["reference"] == call_id]
        assert sorted(t["kind"] for t in mine) == ["call_adjustment", "call_charge"]
        assert -sum(t["amount_paisa"] for t in mine) == after_total

    # Billing lists the adjustment, linking to its call.
    await page.get_by_test_id("nav-billing").click()
    tx = page.locator("#tx-body tr[data-tx-id]", has=page.locator(".kind-call_adjustment"))
    await expect(tx).to_have_count(1)
    await expect(tx.locator("td.debit")).to_have_text(format_inr(-adjustment))
    link = tx.get_by_test_id("tx-call-link")
    await expect(link).to_have_attribute("href", f"/calls?call={call_id}")
    async with page.expect_navigation(url=f"**/calls?call={call_id}"):
        await link.click()
    await expect(detail.get_by_test_id("detail-call-id")).to_have_text(call_id)
    await expect(detail.get_by_test_id("detail-adjustment")).to_have_attribute(
        "data-paisa", str(adjustment)
    )


async def expect_finalized(http: httpx.AsyncClient, call_id: str, key: dict[str, str]) -> None:
    """The worker posts the charge after the hangup (contract: within a second)."""
    deadline = time.monotonic() + 15
    while True:
        response = await http.get(f"/v1/calls/{call_id}", headers=key)
        assert response.status_code == 200, response.text
        if response.json()["status"] == "finalized":
            return
        assert time.monotonic() < deadline, response.json()
        await asyncio.sleep(0.05)
