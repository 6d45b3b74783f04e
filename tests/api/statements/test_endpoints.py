"""Statements, spend insight and the CSV exports over HTTP, against the JSON lists: the same
rows, statements that add up, filters, and bad input refused with a clear code."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from api.statements.csv_export import CALL_COLUMNS, TRANSACTION_COLUMNS
from domain.periods import Month
from tests.api.conftest import create_account
from tests.api.statements.conftest import FORMULA_REFERENCE, History
from tests.support.stack import RunningStack


def month_params(month: Month) -> dict[str, str]:
    return {"from": month.first_day.isoformat(), "to": month.last_day.isoformat()}


def all_pages(http: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = http.get(
            path, params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def csv_rows(http: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, str]]:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture
def http(stack: RunningStack, history: History) -> httpx.Client:
    return stack.client(history.key)


def test_transactions_csv_is_the_json_list_oldest_first(
    http: httpx.Client, history: History
) -> None:
    base = f"/v1/accounts/{history.account_id}"
    listed = all_pages(http, base + "/transactions", {})
    rows = csv_rows(http, base + "/transactions.csv", {})
    assert list(rows[0]) == list(TRANSACTION_COLUMNS)
    assert [int(r["id"]) for r in rows] == sorted(t["id"] for t in listed)
    by_id = {t["id"]: t for t in listed}
    for row in rows:
        tx = by_id[int(row["id"])]
        assert row["type"] == tx["kind"]
        assert int(row["amount_paisa"]) == tx["amount_paisa"]
        assert int(row["balance_after"]) == tx["balance_after"]
        assert row["description"] == tx["description"]
        call_kind = tx["kind"] in ("call_charge", "call_adjustment")
        assert row["call_id"] == (tx["reference"] if call_kind else "")
    # Each row's balance is the previous one's plus its amount, from zero.
    balance = 0
    for row in rows:
        balance += int(row["amount_paisa"])
        assert int(row["balance_after"]) == balance
    now = http.get(base + "/balance").json()
    assert balance == now["available_paisa"]


def test_calls_csv_is_the_json_list(http: httpx.Client, history: History) -> None:
    base = f"/v1/accounts/{history.account_id}"
    listed = all_pages(http, base + "/calls", {})
    rows = csv_rows(http, base + "/calls.csv", {})
    assert list(rows[0]) == list(CALL_COLUMNS)
    assert (
        {r["call_id"] for r in rows}
        == {c["call_id"] for c in listed}
        == set(history.calls.values())
    )
    by_id = {c["call_id"]: c for c in listed}
    for row in rows:
        call = by_id[row["call_id"]]
        assert row["channel"] == call["channel"] and row["outcome"] == call["outcome"]
        for part in ("llm", "stt", "tts", "sip", "provider_total", "margin", "total"):
            assert int(row[f"{part}_paisa"]) == call["breakdown"][f"{part}_paisa"]
        assert int(row["llm_paisa"]) + int(row["stt_paisa"]) + int(row["tts_paisa"]) + int(
            row["sip_paisa"]
        ) == int(row["provider_total_paisa"])
    durations = {r["call_id"]: int(r["duration_seconds"]) for r in rows}
    assert durations[history.calls["phone2"]] == 120
    assert durations[history.calls["web"]] == 90
    assert rows[0]["started_at"].endswith("+05:30")


def test_statements_add_up_and_chain(http: httpx.Client, history: History) -> None:
    base = f"/v1/accounts/{history.account_id}"
    last = http.get(f"{base}/statements/{history.last_month}").json()
    this = http.get(f"{base}/statements/{history.this_month}").json()
    for statement in (last, this):
        assert (
            statement["opening_balance_paisa"]
            + statement["credits_paisa"]
            - statement["debits_paisa"]
            == statement["closing_balance_paisa"]
        )
        assert sum(statement["credits"].values()) == statement["credits_paisa"]
        assert sum(statement["debits"].values()) == statement["debits_paisa"]
    calls_last = history.charged["phone1"] + history.charged["phone2"] + history.charged["web"]
    assert last["opening_balance_paisa"] == 0
    assert last["credits"] == {"promo_grant": 5000, "topup": 100_000}
    assert last["debits"] == {"call_charge": calls_last}
    assert last["transaction_count"] == 5
    assert this["opening_balance_paisa"] == last["closing_balance_paisa"]
    assert this["credits"] == {"topup": 5000}
    assert this["debits"] == {
        "call_charge": history.charged["phone3"],
        "api_charge": history.api_total,
    }
    balance = http.get(f"{base}/balance").json()
    assert this["closing_balance_paisa"] == balance["available_paisa"]
    assert last["first_day"] == history.last_month.first_day.isoformat()

    # The month's CSV rows add up to the statement: opening + Σ amounts = closing.
    for statement, month in ((last, history.last_month), (this, history.this_month)):
        rows = csv_rows(http, f"{base}/transactions.csv", month_params(month))
        assert len(rows) == statement["transaction_count"]
        total = sum(int(r["amount_paisa"]) for r in rows)
        assert statement["opening_balance_paisa"] + total == statement["closing_balance_paisa"]
        assert int(rows[-1]["balance_after"]) == statement["closing_balance_paisa"]
    # A month before the account: zeros.
    early = http.get(f"{base}/statements/2020-01").json()
    assert early["opening_balance_paisa"] == early["closing_balance_paisa"] == 0
    assert early["lines"] == []


def test_usage_summary_by_channel_and_component(http: httpx.Client, history: History) -> None:
    base = f"/v1/accounts/{history.account_id}"
    last = http.get(f"{base}/usage-summary", params={"month": str(history.last_month)}).json()
    channels = {c["channel"]: c for c in last["by_channel"]}
    assert list(channels) == ["phone", "web", "whatsapp", "chat"]
    assert channels["phone"]["calls"] == 2
    assert channels["phone"]["total_paisa"] == history.charged["phone1"] + history.charged["phone2"]
    assert channels["phone"]["seconds"] == 180
    # ₹8.84 over three minutes: ₹2.95 a minute (half-up).
    assert channels["phone"]["per_minute_paisa"] == 295
    assert channels["web"]["total_paisa"] == history.charged["web"]
    assert channels["chat"]["calls"] == 0 and channels["chat"]["per_minute_paisa"] is None
    assert last["osmapi"]["requests"] == 0
    components = {c["component"]: c["provider_paisa"] for c in last["by_component"]}
    assert sum(components.values()) + last["margin_paisa"] == last["total_paisa"]
    assert sum(c["total_paisa"] for c in last["by_channel"]) == last["total_paisa"]
    assert components["sip"] == 60  # two phone calls, ₹0.30 of line each

    this = http.get(f"{base}/usage-summary").json()  # the current month by default
    assert this["month"] == str(history.this_month)
    assert this["osmapi"]["requests"] == 1 and this["osmapi"]["total_paisa"] == history.api_total
    assert this["total_paisa"] == history.charged["phone3"] + history.api_total
    assert this["total_paisa"] == http.get(f"{base}/balance").json()["month_usage_paisa"]
    components = {c["component"]: c["provider_paisa"] for c in this["by_component"]}
    assert sum(components.values()) + this["margin_paisa"] == this["total_paisa"]


def test_filters_on_the_lists_and_the_csv(http: httpx.Client, history: History) -> None:
    base = f"/v1/accounts/{history.account_id}"

    def kinds(params: dict[str, Any]) -> list[str]:
        listed = [t["kind"] for t in all_pages(http, base + "/transactions", params)]
        exported = [r["type"] for r in csv_rows(http, base + "/transactions.csv", params)]
        assert sorted(listed) == sorted(exported)
        return listed

    assert kinds({"type": "topup"}) == ["topup", "topup"]
    assert sorted(kinds({"type": "topup,api_charge"})) == ["api_charge", "topup", "topup"]
    assert (
        kinds({"type": ["call_charge"], **month_params(history.last_month)}) == ["call_charge"] * 3
    )
    assert sorted(kinds(month_params(history.this_month))) == ["api_charge", "call_charge", "topup"]
    assert kinds({"type": "call_adjustment"}) == []
    phone3 = history.calls["phone3"]
    assert kinds({"call_id": phone3[:-3]}) == ["call_charge"]
    assert kinds({"to": history.last_month.last_day.isoformat()}) == [
        "call_charge",
        "call_charge",
        "call_charge",
        "topup",
        "promo_grant",
    ]

    def call_ids(params: dict[str, Any]) -> set[str]:
        listed = {c["call_id"] for c in all_pages(http, base + "/calls", params)}
        exported = {r["call_id"] for r in csv_rows(http, base + "/calls.csv", params)}
        assert listed == exported
        return listed

    names = {v: k for k, v in history.calls.items()}
    assert {names[c] for c in call_ids({"channel": "phone"})} == {"phone1", "phone2", "phone3"}
    assert {names[c] for c in call_ids({"channel": "chat,web"})} == {"chat", "web"}
    assert {names[c] for c in call_ids({"outcome": "no_answer"})} == {"chat"}
    assert {names[c] for c in call_ids(month_params(history.last_month))} == {
        "phone1",
        "phone2",
        "web",
        "chat",
    }
    assert {
        names[c] for c in call_ids({"channel": "phone", **month_params(history.this_month)})
    } == {"phone3"}
    assert call_ids({"call_id": history.calls["web"]}) == {history.calls["web"]}
    assert call_ids({"call_id": "nothing-like-it"}) == set()
    assert call_ids({"call_id": "%"}) == set()  # LIKE wildcards are plain characters


def test_exports_are_csv_injection_safe(http: httpx.Client, history: History) -> None:
    base = f"/v1/accounts/{history.account_id}"
    topup = next(
        r
        for r in csv_rows(http, base + "/transactions.csv", {"type": "topup"})
        if r["reference"].startswith("'")
    )
    assert topup["reference"].startswith("'" + FORMULA_REFERENCE)
    calls = {r["call_id"]: r for r in csv_rows(http, base + "/calls.csv", {})}
    assert calls[history.calls["phone2"]]["hangup_reason"] == "'-2+3 caller hung up"
    assert calls[history.calls["web"]]["hangup_reason"] == "'@SUM(A1:A9)"
    # Numbers stay plain integers, negative ones included.
    charges = csv_rows(http, base + "/transactions.csv", {"type": "call_charge"})
    assert all(r["amount_paisa"].startswith("-") and int(r["amount_paisa"]) < 0 for r in charges)


BAD_QUERIES = [
    ("/transactions", {"type": "bonus"}, "invalid_filter"),
    ("/transactions.csv", {"type": "topup,bonus"}, "invalid_filter"),
    ("/calls", {"channel": "fax"}, "invalid_filter"),
    ("/calls.csv", {"outcome": "Completed"}, "invalid_filter"),
    ("/calls", {"from": "2026-11-10", "to": "2026-11-01"}, "invalid_date_range"),
    ("/transactions.csv", {"from": "2026-11-10", "to": "2026-11-01"}, "invalid_date_range"),
    ("/transactions", {"from": "2026-13-01"}, "invalid_date"),
    ("/calls.csv", {"to": "yesterday"}, "invalid_date"),
    ("/transactions", {"from": "2999-01-01"}, "date_in_future"),
    ("/statements/2999-01", {}, "month_in_future"),
    ("/statements/2026-13", {}, "invalid_month"),
    ("/usage-summary", {"month": "2999-12"}, "month_in_future"),
    ("/usage-summary", {"month": "11-2026"}, "invalid_month"),
]


@pytest.mark.parametrize(("path", "params", "code"), BAD_QUERIES)
def test_bad_input_is_a_422_with_a_clear_code(
    http: httpx.Client, history: History, path: str, params: dict[str, str], code: str
) -> None:
    response = http.get(f"/v1/accounts/{history.account_id}{path}", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_another_customer_gets_404_and_support_reads(
    stack: RunningStack, history: History, support_key: str
) -> None:
    other = create_account(stack)
    base = f"/v1/accounts/{history.account_id}"
    paths = [
        "/transactions.csv",
        "/calls.csv",
        f"/statements/{history.this_month}",
        "/usage-summary",
    ]
    with stack.client(other.key) as http:
        for path in paths:
            response = http.get(base + path)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == "not_found"
    with stack.client(support_key) as http:
        for path in paths:
            assert http.get(base + path).status_code == 200, path
        assert http.get("/v1/accounts/acc_nope/transactions.csv").status_code == 404
