"""Demo traffic against a running stack: accounts through the HTTP API, calls through the
orchestrator client (`orchestrator_client.BillingClient`, i.e. straight to Temporal).

    python -m dev.demo --api-url http://127.0.0.1:8000 --admin-key KEY \\
        --temporal-address 127.0.0.1:7233 --rate 2 --duration 60 --accounts 3

What it does:
- creates `--accounts` demo accounts (each gets the welcome promo), tops each up with ₹500,
  publishes a coupon and redeems it with the first account's customer key, creates a support
  key and refunds ₹100 of the first account's paid balance (refund workflow), has the first
  customer buy ₹1,000 of credits through a checkout paid at the Razorpay stand-in (when the
  stack runs one: dev.demo_checkout), and creates one
  extra account with only the welcome promo that is driven until it runs low and is refused;
- starts `--rate` calls a second over a mix of channels (phone, web, whatsapp, chat) and
  outcomes (completed, voicemail, failed, no_answer, busy, rejected), short and long calls, each
  reporting its usage in batched `usage` signals about once a second (a minute of call time is
  compressed into a few seconds), then `hangup`, then waits for the call's final result;
- prints a summary line every few seconds and a final summary (with `DEMO SUMMARY {json}`).

Stops after `--duration` seconds (0: until Ctrl-C/SIGTERM), finishing the calls in flight.
Exit status: 0 when calls were billed, 1 when setup failed, 2 when no call was billed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from dev.demo_checkout import buy_credits

CHANNEL_WEIGHTS = {"phone": 45, "web": 25, "whatsapp": 15, "chat": 15}
OUTCOME_WEIGHTS = {
    "completed": 66,
    "voicemail": 10,
    "failed": 7,
    "no_answer": 7,
    "busy": 5,
    "rejected": 5,
}
CHARGED_OUTCOMES = {"completed", "voicemail"}
CHANNEL_COMPONENTS = {
    "phone": ("llm", "stt", "tts", "sip"),
    "web": ("llm", "stt", "tts"),
    "whatsapp": ("llm", "stt", "tts"),
    "chat": ("llm",),
}
SKUS = {
    "llm": ["openai/gpt-4o-mini"] * 4 + ["google/gemini-2.0-flash"],
    "stt": ["deepgram/nova-3"] * 3 + ["sarvam/saarika-v2"],
    "tts": ["elevenlabs/flash-v2"] * 3 + ["sarvam/bulbul-v2"],
    "sip": ["plivo/in-outbound", "plivo/in-inbound"],
}
TOPUP_PAISA = 50_000
COUPON_BONUS_PAISA = 10_000
REFUND_PAISA = 10_000


def rupees(paisa: int) -> str:
    sign = "-" if paisa < 0 else ""
    paisa = abs(paisa)
    return f"{sign}₹{paisa // 100:,}.{paisa % 100:02d}"


class SetupError(RuntimeError):
    pass


@dataclass
class DemoAccount:
    id: str
    name: str
    customer_key: str
    low: bool = False


@dataclass
class Stats:
    started: int = 0
    authorized: int = 0
    refused: int = 0
    billed: int = 0
    not_charged: int = 0
    errors: int = 0
    charged_paisa: int = 0
    in_flight: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    refusal_reasons: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None

    def line(self, elapsed: float) -> str:
        return (
            f"[demo] {elapsed:5.0f}s  calls started {self.started} · billed {self.billed} · "
            f"not charged {self.not_charged} · refused {self.refused} · in progress "
            f"{self.in_flight} · errors {self.errors} · charged {rupees(self.charged_paisa)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls_started": self.started,
            "calls_authorized": self.authorized,
            "calls_refused": self.refused,
            "calls_billed": self.billed,
            "calls_not_charged": self.not_charged,
            "errors": self.errors,
            "charged_paisa": self.charged_paisa,
            "outcomes": dict(self.outcomes),
            "channels": dict(self.channels),
            "refusal_reasons": dict(self.refusal_reasons),
            "last_error": self.last_error,
        }


def usage_for(channel: str, seconds: int, batch: int, rng: random.Random) -> list[dict[str, Any]]:
    """Usage events for `seconds` of call time, like the docs' typical minute per 60 s."""
    events: list[dict[str, Any]] = []
    for component in CHANNEL_COMPONENTS[channel]:
        event: dict[str, Any] = {
            "event_id": f"{component}-{batch}",
            "component": component,
            "sku": rng.choice(SKUS[component]),
        }
        if component == "llm":
            per_second = 40 if channel == "chat" else 400
            event["input_tokens"] = max(1, int(seconds * per_second * rng.uniform(0.7, 1.3)))
            event["output_tokens"] = max(1, int(seconds * per_second / 12 * rng.uniform(0.7, 1.3)))
        elif component == "stt":
            event["audio_seconds"] = seconds
        elif component == "tts":
            event["characters"] = max(1, int(seconds * 9 * rng.uniform(0.7, 1.3)))
        else:
            event["seconds"] = seconds
        events.append(event)
    return events


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.stats = Stats()
        self.accounts: list[DemoAccount] = []
        self.low_account: DemoAccount | None = None
        self.stop = asyncio.Event()
        self.http = httpx.AsyncClient(base_url=args.api_url.rstrip("/"), timeout=30)
        self.admin = {"Authorization": f"Bearer {args.admin_key}"}
        self.support_key: str | None = None
        self.extras: dict[str, Any] = {}
        self.billing: Any = None
        self.call_seq = 0
        self.started_at = time.monotonic()

    # -- HTTP setup -------------------------------------------------------------------------

    async def _post(
        self, path: str, body: dict[str, Any], key: str | None = None, ok: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        headers = self.admin if key is None else {"Authorization": f"Bearer {key}"}
        headers = {**headers, "Idempotency-Key": f"demo-{self.run_id}-{uuid.uuid4().hex}"}
        response = await self.http.post(path, json=body, headers=headers)
        if response.status_code >= 300 and response.status_code not in ok:
            raise SetupError(f"POST {path} → {response.status_code}: {response.text[:500]}")
        data: dict[str, Any] = response.json() if response.content else {}
        return data

    async def _get(self, path: str, key: str) -> dict[str, Any]:
        response = await self.http.get(path, headers={"Authorization": f"Bearer {key}"})
        if response.status_code >= 300:
            raise SetupError(f"GET {path} → {response.status_code}: {response.text[:500]}")
        data: dict[str, Any] = response.json()
        return data

    async def create_account(self, name: str, *, low: bool = False) -> DemoAccount:
        slug = name.lower().replace(" ", "-")
        created = await self._post(
            "/v1/accounts", {"name": name, "email": f"{slug}.{self.run_id}@demo.osmtalk.example"}
        )
        account = DemoAccount(
            id=str(created["account"]["id"]),
            name=name,
            customer_key=str(created["api_key"]["key"]),
            low=low,
        )
        return account

    async def setup(self) -> None:
        names = ["Acme Clinics", "Bharat Motors", "Chai Point Support", "Delta Realty", "Eka Labs"]
        for i in range(self.args.accounts):
            name = names[i] if i < len(names) else f"Demo Customer {i + 1}"
            account = await self.create_account(name)
            await self._post(
                f"/v1/accounts/{account.id}/topups",
                {"amount_paisa": TOPUP_PAISA, "payment_reference": f"demo-{self.run_id}-{i}"},
            )
            self.accounts.append(account)
        first = self.accounts[0]
        # A coupon, redeemed with the customer's own key (codes are case-sensitive).
        code = f"DIWALI-{self.run_id.upper()}"
        await self._post("/v1/coupons", {"code": code, "bonus_paisa": COUPON_BONUS_PAISA})
        preview = await self._post(
            f"/v1/accounts/{first.id}/coupons/preview", {"code": code}, key=first.customer_key
        )
        await self._post(
            f"/v1/accounts/{first.id}/coupons/redeem", {"code": code}, key=first.customer_key
        )
        self.extras["coupon"] = {"code": code, "bonus_paisa": preview.get("bonus_paisa")}
        # A refund of part of the paid balance, through a support key.
        support = await self._post("/v1/api-keys", {"role": "support"})
        self.support_key = str(support["key"])
        refund = await self._post(
            f"/v1/accounts/{first.id}/refunds", {"amount_paisa": REFUND_PAISA}, key=self.support_key
        )
        self.extras["refund"] = {"id": refund.get("id"), "amount_paisa": REFUND_PAISA}
        # The first customer buys credits through a checkout (with the Razorpay stand-in).
        bought = await buy_credits(self.http, first.id, first.customer_key)
        if bought is not None:
            self.extras["checkout"] = bought
            print(
                f"[demo] {first.name} bought {rupees(bought['amount_paisa'])} of credits "
                f"(checkout {bought['checkout_id']}: {bought['status']})",
                flush=True,
            )
        # An account with only the welcome promo: it runs low and is refused.
        if self.args.low_account:
            self.low_account = await self.create_account("Zed Trial (runs low)", low=True)
        print(
            f"[demo] {len(self.accounts)} accounts topped up with {rupees(TOPUP_PAISA)} each; "
            f"coupon {code} redeemed by {first.name}; refund of {rupees(REFUND_PAISA)} started "
            f"({self.extras['refund']['id']})"
            + ("; 1 trial account that will run low" if self.low_account else ""),
            flush=True,
        )
        print(
            f"[demo] dashboard {self.args.api_url.rstrip('/')}/billing — sign in with "
            f"{first.name}'s customer key: {first.customer_key}",
            flush=True,
        )

    async def check_refund(self) -> None:
        refund_id = self.extras.get("refund", {}).get("id")
        if not refund_id or not self.support_key:
            return
        with contextlib.suppress(Exception):
            refund = await self._get(f"/v1/refunds/{refund_id}", self.support_key)
            self.extras["refund"]["status"] = refund.get("status")

    # -- calls --------------------------------------------------------------------------------

    async def one_call(self, account: DemoAccount, *, long: bool | None = None) -> str:
        """Authorize, stream usage in batches, hang up, await the final charge.
        Returns 'billed', 'not_charged', 'refused' or 'error'."""
        rng = self.rng
        self.call_seq += 1
        call_id = f"demo-{self.run_id}-{self.call_seq:05d}"
        channel = "phone" if account.low else _pick(rng, CHANNEL_WEIGHTS)
        outcome = "completed" if account.low else _pick(rng, OUTCOME_WEIGHTS)
        if long is None:
            long = rng.random() < 0.3
        call_seconds = rng.randint(120, 600) if long else rng.randint(10, 75)
        if account.low:
            call_seconds = rng.randint(480, 900)  # ₹35-66 each: the ₹50 welcome promo lasts 1-2
        if outcome == "voicemail":
            call_seconds = rng.randint(2, 30)
        self.stats.started += 1
        self.stats.channels[channel] += 1
        self.stats.in_flight += 1
        try:
            decision = await self.billing.authorize(call_id, account.id, channel)
            if not decision.authorized:
                self.stats.refused += 1
                self.stats.refusal_reasons[str(decision.reason)] += 1
                return "refused"
            self.stats.authorized += 1
            if outcome in ("no_answer", "busy", "rejected"):
                await asyncio.sleep(rng.uniform(0.5, 2.0))  # ringing
            else:
                if outcome == "failed":
                    call_seconds = rng.randint(3, 40)
                # Real time is compressed: one usage signal a second, each covering a slice.
                batches = max(1, min(self.args.max_batches, call_seconds // 15 + 1))
                slice_seconds = [call_seconds // batches] * batches
                slice_seconds[-1] += call_seconds - sum(slice_seconds)
                for batch, seconds in enumerate(slice_seconds):
                    if seconds > 0:
                        events = usage_for(channel, seconds, batch, rng)
                        await self.billing.report_usage(call_id, {"events": events})
                    await asyncio.sleep(self.args.batch_interval)
            reason = {"failed": "bot crashed", "rejected": "rejected mid-ring"}.get(outcome)
            await self.billing.hangup(call_id, outcome, reason=reason)
            result = await asyncio.wait_for(self.billing.result(call_id), timeout=60)
            charged = result.breakdown.total_paisa
            self.stats.outcomes[outcome] += 1
            if outcome in CHARGED_OUTCOMES and charged > 0:
                self.stats.billed += 1
                self.stats.charged_paisa += charged
                return "billed"
            self.stats.not_charged += 1
            return "not_charged"
        except Exception as exc:
            self.stats.errors += 1
            self.stats.last_error = f"{call_id}: {type(exc).__name__}: {exc}"[:300]
            return "error"
        finally:
            self.stats.in_flight -= 1

    async def traffic(self) -> None:
        semaphore = asyncio.Semaphore(self.args.concurrency)
        tasks: set[asyncio.Task[str]] = set()
        interval = 1.0 / self.args.rate if self.args.rate > 0 else 1.0

        async def run(account: DemoAccount) -> str:
            async with semaphore:
                return await self.one_call(account)

        while not self.stop.is_set():
            if len(tasks) < self.args.concurrency * 2:
                task = asyncio.create_task(run(self.rng.choice(self.accounts)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=interval)
        if tasks:
            await asyncio.wait(tasks, timeout=self.args.drain_timeout)
            for task in tasks:
                task.cancel()

    async def run_low_account(self) -> None:
        """Long phone calls, one after another, until the trial account is refused."""
        account = self.low_account
        if account is None:
            return
        extra_tries = 0
        while True:
            if self.stop.is_set():
                # A bounded run goes on a little (two calls of ₹35+ use up the ₹50 promo, so
                # the third is refused at the latest): the run shows the refusal too.
                if extra_tries >= 3 or self.args.duration <= 0:
                    return
                extra_tries += 1
            outcome = await self.one_call(account, long=True)
            if outcome == "refused":
                balance = await self._get(
                    f"/v1/accounts/{account.id}/balance", account.customer_key
                )
                self.extras["low_account"] = {
                    "id": account.id,
                    "refused": True,
                    "available_paisa": balance.get("available_paisa"),
                }
                print(
                    f"[demo] {account.name} ran low: available "
                    f"{rupees(int(balance.get('available_paisa') or 0))} < minimum "
                    f"{rupees(int(balance.get('min_balance_paisa') or 0))}, "
                    "new calls are refused (insufficient_balance)",
                    flush=True,
                )
                return
            if outcome == "error":
                await asyncio.sleep(1)

    async def report(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.args.summary_interval)
            print(self.stats.line(time.monotonic() - self.started_at), flush=True)

    async def balances(self) -> list[dict[str, Any]]:
        out = []
        for account in [*self.accounts, *([self.low_account] if self.low_account else [])]:
            with contextlib.suppress(Exception):
                balance = await self._get(
                    f"/v1/accounts/{account.id}/balance", account.customer_key
                )
                out.append({"account_id": account.id, "name": account.name, **balance})
        return out

    async def captured_emails(self) -> int | None:
        """How many mails the local capture server got (None when real SendGrid is used)."""
        host = os.environ.get("SENDGRID_HOST", "")
        if os.environ.get("SENDGRID_API_KEY") or not host.startswith("http://127.0.0.1"):
            return None
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.get(f"{host.rstrip('/')}/messages")
                return len(response.json().get("messages", []))
        except Exception:
            return None

    async def main(self) -> int:
        from orchestrator_client import BillingClient

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        try:
            self.billing = await BillingClient.connect(
                self.args.temporal_address, namespace=self.args.temporal_namespace
            )
            await self.setup()
        except Exception as exc:
            print(f"[demo] setup failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            await self.http.aclose()
            return 1
        self.started_at = time.monotonic()
        if self.args.duration > 0:
            loop.call_later(self.args.duration, self.stop.set)
        print(
            f"[demo] sending ~{self.args.rate:g} calls/s"
            + (f" for {self.args.duration:g}s" if self.args.duration > 0 else " until Ctrl-C"),
            flush=True,
        )
        await asyncio.gather(self.traffic(), self.run_low_account(), self.report())
        await self.check_refund()
        balances = await self.balances()
        await self.http.aclose()
        print(self.stats.line(time.monotonic() - self.started_at), flush=True)
        for balance in balances:
            print(
                f"[demo]   {balance['name']:<24} available "
                f"{rupees(int(balance.get('available_paisa') or 0)):>12}  "
                f"(paid {rupees(int(balance.get('paid_paisa') or 0))}, promo "
                f"{rupees(int(balance.get('promo_paisa') or 0))}), this month "
                f"{rupees(int(balance.get('month_usage_paisa') or 0))}",
                flush=True,
            )
        if self.stats.last_error:
            print(f"[demo] last error: {self.stats.last_error}", flush=True)
        emails = await self.captured_emails()
        if emails is not None:
            print(f"[demo] emails captured (low-balance alerts etc.): {emails}", flush=True)
        summary = {
            **self.stats.as_dict(),
            **self.extras,
            "balances": balances,
            "emails_captured": emails,
        }
        print("DEMO SUMMARY " + json.dumps(summary, default=str), flush=True)
        return 0 if self.stats.billed > 0 else 2


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="Demo call traffic against a running osmTalk Billing stack"
    )
    parser.add_argument(
        "--api-url", default=env("API_URL") or f"http://127.0.0.1:{env('API_PORT') or 8000}"
    )
    parser.add_argument("--admin-key", default=env("ADMIN_API_KEY"))
    parser.add_argument("--temporal-address", default=env("TEMPORAL_ADDRESS") or "127.0.0.1:7233")
    parser.add_argument("--temporal-namespace", default=env("TEMPORAL_NAMESPACE") or "default")
    parser.add_argument("--rate", type=float, default=2.0, help="calls started per second")
    parser.add_argument(
        "--duration", type=float, default=0, help="seconds of traffic (0: until Ctrl-C)"
    )
    parser.add_argument("--accounts", type=int, default=3, help="funded demo accounts")
    parser.add_argument("--concurrency", type=int, default=20, help="calls in flight at most")
    parser.add_argument(
        "--no-low-account",
        dest="low_account",
        action="store_false",
        help="skip the trial account that runs low and gets refused",
    )
    parser.add_argument("--summary-interval", type=float, default=5.0)
    parser.add_argument(
        "--batch-interval", type=float, default=1.0, help="seconds between usage signals"
    )
    parser.add_argument("--max-batches", type=int, default=6, help="usage signals per call at most")
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.admin_key:
        parser.error("--admin-key (or ADMIN_API_KEY) is required")
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(Demo(parse_args(argv)).main())


if __name__ == "__main__":
    sys.exit(main())
