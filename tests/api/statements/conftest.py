"""One account with two months of history, built once for the statement and export tests:
last month (welcome promo, a top-up with a formula-like reference, three charged calls and a
voided one), this month (a top-up, a phone call, an osmAPI request)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from domain.periods import BILLING_TZ, Month
from ledger.posting import utcnow
from tests.api.conftest import create_account, unique
from tests.support.ledger_data import finish_call, move_history, start_call
from tests.support.stack import RunningStack

WEB_USAGE: list[dict[str, object]] = [
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
FORMULA_REFERENCE = '=HYPERLINK("http://evil.example","pay")'


@dataclass
class History:
    account_id: str
    key: str
    this_month: Month
    last_month: Month
    calls: dict[str, str] = field(default_factory=dict)  # name -> call id
    charged: dict[str, int] = field(default_factory=dict)  # name -> total paisa
    api_total: int = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def previous(month: Month) -> Month:
    return Month(month.year - 1, 12) if month.month == 1 else Month(month.year, month.month - 1)


@pytest.fixture(scope="module")
def history(
    stack: RunningStack, session_factory: sessionmaker[Session], orchestrator_key: str
) -> History:
    this_month = Month.of(utcnow())
    last_month = previous(this_month)
    account = create_account(stack, name="History Traders")
    found = History(account.id, account.key, this_month, last_month)
    with stack.client(stack.admin_key) as admin:
        response = admin.post(
            f"/v1/accounts/{account.id}/topups",
            json={"amount_paisa": 100_000, "payment_reference": FORMULA_REFERENCE + unique("")},
        )
        assert response.status_code == 201, response.text

    def call(
        name: str,
        channel: str,
        usage: list[dict[str, Any]],
        outcome: str = "completed",
        seconds: int = 60,
        reason: str | None = None,
    ) -> None:
        call_id = unique(f"hist-{name}")
        start_call(session_factory, account.id, call_id, channel, seconds_ago=seconds)
        found.calls[name] = call_id
        found.charged[name] = finish_call(session_factory, call_id, channel, usage, outcome, reason)

    call("phone1", "phone", TYPICAL_PHONE_CALL_USAGE, seconds=60)
    call("phone2", "phone", TYPICAL_PHONE_CALL_USAGE, seconds=120, reason="-2+3 caller hung up")
    call("web", "web", WEB_USAGE, seconds=90, reason="@SUM(A1:A9)")
    call("chat", "chat", [], outcome="no_answer", seconds=5)
    # All of that happened on the 15th of last month, at noon in Kolkata.
    noon = datetime.combine(last_month.first_day.replace(day=15), time(12), BILLING_TZ)
    move_history(session_factory, account.id, noon.astimezone(UTC))

    with stack.client(stack.admin_key) as admin:
        response = admin.post(
            f"/v1/accounts/{account.id}/topups",
            json={"amount_paisa": 5_000, "payment_reference": unique("pay-now")},
        )
        assert response.status_code == 201, response.text
    call("phone3", "phone", TYPICAL_PHONE_CALL_USAGE, seconds=30)
    with stack.client(orchestrator_key) as orchestrator:
        response = orchestrator.post(
            "/v1/api-usage",
            json={
                "request_id": unique("req"),
                "account_id": account.id,
                "sku": "openai/gpt-4o-mini",
                "input_tokens": 40_000,
                "output_tokens": 3_000,
            },
        )
        assert response.status_code == 200, response.text
    with stack.client(account.key) as http:
        charges = http.get(f"/v1/accounts/{account.id}/transactions", params={"type": "api_charge"})
        found.api_total = -sum(t["amount_paisa"] for t in charges.json()["items"])
    assert found.api_total > 0
    return found
