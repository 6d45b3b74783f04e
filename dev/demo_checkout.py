"""The demo's customer buying credits (dev.demo): a checkout through the API with the
customer's own key, paid at the Razorpay stand-in (its `/_standin` control does what the hosted
page's Pay button does), then the webhook credits it and the balance rises.

Only with the stand-in (`RAZORPAY_API_URL` answering `/_standin/healthz`): against a real
Razorpay test account a person pays on the hosted page."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

CHECKOUT_PAISA = 100_000


async def standin_url() -> str | None:
    url = (os.environ.get("RAZORPAY_API_URL") or "").rstrip("/")
    if not url:
        return None
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            response = await http.get(f"{url}/_standin/healthz")
        return url if response.status_code == 200 else None
    except httpx.HTTPError:
        return None


async def buy_credits(
    api: httpx.AsyncClient, account_id: str, customer_key: str, *, timeout: float = 30.0
) -> dict[str, Any] | None:
    """Buy ₹1,000 of credits with a saved card; the checkout as it ended, or None (no stand-in)."""
    url = await standin_url()
    if url is None:
        return None
    auth = {"Authorization": f"Bearer {customer_key}"}
    before = (await api.get(f"/v1/accounts/{account_id}/balance", headers=auth)).json()
    created = await api.post(
        f"/v1/accounts/{account_id}/checkouts",
        json={"amount_paisa": CHECKOUT_PAISA, "save_method": True},
        headers=auth,
    )
    created.raise_for_status()
    checkout = created.json()
    async with httpx.AsyncClient(timeout=10) as http:
        paid = await http.post(
            f"{url}/_standin/orders/{checkout['order_id']}/pay", json={"save_method": True}
        )
        paid.raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (await api.get(f"/v1/checkouts/{checkout['checkout_id']}", headers=auth)).json()
        if state["status"] != "created":
            balance = (await api.get(f"/v1/accounts/{account_id}/balance", headers=auth)).json()
            return {
                **state,
                "paid_before_paisa": before["paid_paisa"],
                "paid_after_paisa": balance["paid_paisa"],
            }
        await asyncio.sleep(0.25)
    return {**checkout, "status": "created (timed out waiting for the webhook)"}
