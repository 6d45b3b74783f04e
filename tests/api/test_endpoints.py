"""Endpoint behaviour over real HTTP: money fields, validation, idempotency, pagination,
coupons, rate cards, osmAPI usage, refunds, keys, health and metrics."""

from __future__ import annotations

import hashlib
import re
import socket
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from db.models import ApiKey
from tests.api.conftest import Account, create_account, unique
from tests.support.stack import ApiServer, RunningStack

BALANCE_FIELDS = {
    "available_paisa",
    "paid_paisa",
    "promo_paisa",
    "reserved_paisa",
    "refundable_paisa",
    "month_usage_paisa",
    "min_balance_paisa",
    "currency",
}


def ledger_state(stack: RunningStack, account: Account) -> tuple[dict[str, Any], list[int]]:
    """The balance and the ids of every transaction: equal before and after = nothing changed."""
    with stack.client(stack.admin_key) as http:
        balance = http.get(f"/v1/accounts/{account.id}/balance").json()
        items = http.get(f"/v1/accounts/{account.id}/transactions?limit=200").json()["items"]
    return balance, [t["id"] for t in items]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def metric_value(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# --- accounts, keys, balances ---------------------------------------------------------------


def test_create_account_grants_welcome_promo_and_a_hashed_customer_key(
    stack: RunningStack, session_factory: sessionmaker[Session]
) -> None:
    account = create_account(stack, margin_rate="0.25")
    created = account.created
    assert created["account"]["margin_rate"] == "0.25"
    assert created["account"]["email"] == "billing@acme.example"
    assert created["balance"]["promo_paisa"] == 5000
    assert created["balance"]["paid_paisa"] == 0
    assert created["api_key"]["role"] == "customer"
    assert created["api_key"]["account_id"] == account.id
    with session_factory() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == created["api_key"]["id"])).one()
    assert row.key_hash == hashlib.sha256(account.key.encode()).hexdigest()
    assert account.key not in (row.key_hash, row.prefix)
    with stack.client(account.key) as http:
        balance = http.get(f"/v1/accounts/{account.id}/balance").json()
    assert balance.keys() >= BALANCE_FIELDS
    assert balance == {
        "account_id": account.id,
        "available_paisa": 5000,
        "paid_paisa": 0,
        "promo_paisa": 5000,
        "reserved_paisa": 0,
        "refundable_paisa": 0,
        "month_usage_paisa": 0,
        "min_balance_paisa": 1000,
        "alert_threshold_paisa": 1000,
        "currency": "INR",
    }


def test_revoked_key_is_refused(stack: RunningStack, admin: httpx.Client) -> None:
    account = create_account(stack)
    created = admin.post("/v1/api-keys", json={"role": "customer", "account_id": account.id})
    assert created.status_code == 201
    key = created.json()
    with stack.client(key["key"]) as http:
        assert http.get(f"/v1/accounts/{account.id}/balance").status_code == 200
        assert admin.delete(f"/v1/api-keys/{key['id']}").json()["revoked_at"] is not None
        assert_problem(http.get(f"/v1/accounts/{account.id}/balance"), 401, "unauthorized")


@pytest.mark.parametrize(
    "body",
    [
        {"role": "customer"},
        {"role": "support", "account_id": "acc_x"},
        {"role": "root"},
        {"role": "customer", "account_id": "acc_does_not_exist"},
    ],
)
def test_bad_api_key_requests_are_refused(admin: httpx.Client, body: dict[str, Any]) -> None:
    response = admin.post("/v1/api-keys", json=body)
    expected = 404 if body.get("account_id") == "acc_does_not_exist" else 422
    assert_problem(response, expected, "not_found" if expected == 404 else "validation_error")


# --- bad input changes nothing ----------------------------------------------------------------


BAD_TOPUPS: list[tuple[str, bytes | dict[str, Any] | list[Any], int]] = [
    ("malformed json", b'{"amount_paisa": 100, "payment_reference": ', 400),
    ("not an object", [1, 2], 422),
    ("amount as string", {"amount_paisa": "100", "payment_reference": "p"}, 422),
    ("float amount", {"amount_paisa": 100.5, "payment_reference": "p"}, 422),
    ("integral float", {"amount_paisa": 100.0, "payment_reference": "p"}, 422),
    ("negative", {"amount_paisa": -100, "payment_reference": "p"}, 422),
    ("zero", {"amount_paisa": 0, "payment_reference": "p"}, 422),
    ("absurd", {"amount_paisa": 10**15, "payment_reference": "p"}, 422),
    ("boolean", {"amount_paisa": True, "payment_reference": "p"}, 422),
    ("missing reference", {"amount_paisa": 100}, 422),
    ("empty reference", {"amount_paisa": 100, "payment_reference": ""}, 422),
    ("unknown field", {"amount_paisa": 100, "payment_reference": "p", "bonus": 1}, 422),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD_TOPUPS, ids=[c[0] for c in BAD_TOPUPS])
def test_bad_topup_is_refused_and_changes_nothing(
    stack: RunningStack, admin: httpx.Client, case: str, body: Any, status: int
) -> None:
    account = create_account(stack, topup_paisa=1000)
    before = ledger_state(stack, account)
    if isinstance(body, bytes):
        response = admin.post(
            f"/v1/accounts/{account.id}/topups",
            content=body,
            headers={"content-type": "application/json"},
        )
    else:
        response = admin.post(f"/v1/accounts/{account.id}/topups", json=body)
    problem = assert_problem(response, status, "validation_error")
    assert problem["detail"]
    assert ledger_state(stack, account) == before


def test_topup_on_unknown_account_is_404(admin: httpx.Client) -> None:
    response = admin.post(
        "/v1/accounts/acc_nope/topups", json={"amount_paisa": 100, "payment_reference": "x"}
    )
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "email": "a@b.example"},
        {"name": "A", "email": "not-an-email"},
        {"name": "A", "email": "a@b.example", "margin_rate": -1},
        {"name": "A", "email": "a@b.example", "margin_rate": "11"},
        {"name": "A", "email": "a@b.example", "margin_rate": "0.123456"},
        {"name": "A"},
    ],
)
def test_bad_account_is_refused(admin: httpx.Client, body: dict[str, Any]) -> None:
    assert_problem(admin.post("/v1/accounts", json=body), 422, "validation_error")


def test_unknown_route_is_a_problem(admin: httpx.Client) -> None:
    assert_problem(admin.get("/v1/nothing-here"), 404, "not_found")


# --- idempotency -----------------------------------------------------------------------------


def test_topup_is_idempotent_on_payment_reference(stack: RunningStack, admin: httpx.Client) -> None:
    account = create_account(stack)
    body = {"amount_paisa": 25000, "payment_reference": unique("pay")}
    first = admin.post(f"/v1/accounts/{account.id}/topups", json=body)
    second = admin.post(f"/v1/accounts/{account.id}/topups", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["transaction"]["id"] == second.json()["transaction"]["id"]
    before = ledger_state(stack, account)
    assert before[0]["paid_paisa"] == 25000
    changed = admin.post(f"/v1/accounts/{account.id}/topups", json={**body, "amount_paisa": 30000})
    assert_problem(changed, 409, "conflict")
    assert ledger_state(stack, account) == before


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    stack: RunningStack, admin: httpx.Client
) -> None:
    account = create_account(stack)
    key = {"Idempotency-Key": unique("idem")}
    path = f"/v1/accounts/{account.id}/topups"
    body = {"amount_paisa": 700, "payment_reference": unique("pay")}
    first = admin.post(path, json=body, headers=key)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    replay = admin.post(path, json=body, headers=key)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    before = ledger_state(stack, account)
    other = admin.post(path, json={**body, "payment_reference": unique("pay")}, headers=key)
    assert_problem(other, 409, "conflict")
    assert ledger_state(stack, account) == before
    assert before[0]["paid_paisa"] == 700


def test_idempotent_account_creation_creates_one_account(admin: httpx.Client) -> None:
    key = {"Idempotency-Key": unique("idem")}
    body = {"name": "Once", "email": "once@x.example"}
    first = admin.post("/v1/accounts", json=body, headers=key)
    replay = admin.post("/v1/accounts", json=body, headers=key)
    assert first.status_code == replay.status_code == 201
    assert first.json()["account"]["id"] == replay.json()["account"]["id"]
    assert first.json()["api_key"]["key"].startswith("osk_")
    assert replay.json()["api_key"]["key"] is None  # a secret is shown once, never stored


def test_a_refused_request_is_not_remembered(stack: RunningStack, admin: httpx.Client) -> None:
    account = create_account(stack)
    key = {"Idempotency-Key": unique("idem")}
    path = f"/v1/accounts/{account.id}/topups"
    bad = admin.post(path, json={"amount_paisa": -1, "payment_reference": "r"}, headers=key)
    assert_problem(bad, 422, "validation_error")
    good = admin.post(
        path, json={"amount_paisa": 100, "payment_reference": unique("pay")}, headers=key
    )
    assert good.status_code == 201


# --- pagination ----------------------------------------------------------------------------


def test_transactions_are_newest_first_and_cursor_paginated(
    stack: RunningStack, admin: httpx.Client
) -> None:
    account = create_account(stack)
    for amount in (100, 200, 300, 400, 500):
        response = admin.post(
            f"/v1/accounts/{account.id}/topups",
            json={"amount_paisa": amount, "payment_reference": unique("pay")},
        )
        assert response.status_code == 201
    seen: list[dict[str, Any]] = []
    cursor = None
    with stack.client(account.key) as http:
        for _ in range(5):
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = http.get(f"/v1/accounts/{account.id}/transactions", params=params).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        balance = http.get(f"/v1/accounts/{account.id}/balance").json()
    assert [t["amount_paisa"] for t in seen] == [500, 400, 300, 200, 100, 5000]
    assert [t["kind"] for t in seen] == ["topup"] * 5 + ["promo_grant"]
    assert sum(t["amount_paisa"] for t in seen) == balance["available_paisa"] == 6500
    assert seen[0]["balance_after"] == 6500
    bad = admin.get(f"/v1/accounts/{account.id}/transactions", params={"cursor": "abc"})
    assert_problem(bad, 422, "validation_error")


# --- coupons ---------------------------------------------------------------------------------


def test_coupon_preview_redeem_once_and_case_sensitive(
    stack: RunningStack, admin: httpx.Client
) -> None:
    code = unique("Diwali")
    created = admin.post(
        "/v1/coupons", json={"code": code, "bonus_paisa": 10000, "max_redemptions": 5}
    )
    assert created.status_code == 201, created.text
    account = create_account(stack)
    path = f"/v1/accounts/{account.id}"
    with stack.client(account.key) as http:
        before = ledger_state(stack, account)
        preview = http.post(f"{path}/coupons/preview", json={"code": code})
        assert preview.status_code == 200
        assert preview.json()["bonus_paisa"] == 10000
        assert ledger_state(stack, account) == before
        wrong_case = http.post(f"{path}/coupons/redeem", json={"code": code.upper()})
        assert_problem(wrong_case, 422, "invalid_coupon")
        assert ledger_state(stack, account) == before
        redeemed = http.post(f"{path}/coupons/redeem", json={"code": code})
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.json()["balance"]["promo_paisa"] == 15000
        after = ledger_state(stack, account)
        again = http.post(f"{path}/coupons/redeem", json={"code": code})
        assert_problem(again, 422, "invalid_coupon")
        assert_problem(
            http.post(f"{path}/coupons/preview", json={"code": code}), 422, "invalid_coupon"
        )
        assert ledger_state(stack, account) == after
    assert after[0]["promo_paisa"] == 15000


def test_expired_and_exhausted_coupons_are_invalid(
    stack: RunningStack, admin: httpx.Client
) -> None:
    expired = unique("OLD")
    admin.post(
        "/v1/coupons",
        json={"code": expired, "bonus_paisa": 100, "expires_at": "2020-01-01T00:00:00Z"},
    )
    single = unique("ONE")
    admin.post("/v1/coupons", json={"code": single, "bonus_paisa": 100, "max_redemptions": 1})
    first, second = create_account(stack), create_account(stack)
    with stack.client(first.key) as http:
        response = http.post(f"/v1/accounts/{first.id}/coupons/redeem", json={"code": expired})
        assert_problem(response, 422, "invalid_coupon")
        response = http.post(f"/v1/accounts/{first.id}/coupons/redeem", json={"code": single})
        assert response.status_code == 200
    with stack.client(second.key) as http:
        response = http.post(f"/v1/accounts/{second.id}/coupons/redeem", json={"code": single})
        assert_problem(response, 422, "invalid_coupon")


def test_coupon_with_other_terms_is_a_conflict(admin: httpx.Client) -> None:
    code = unique("TWICE")
    assert admin.post("/v1/coupons", json={"code": code, "bonus_paisa": 100}).status_code == 201
    response = admin.post("/v1/coupons", json={"code": code, "bonus_paisa": 200})
    assert_problem(response, 409, "conflict")
    bad = admin.post("/v1/coupons", json={"code": "has space", "bonus_paisa": 100})
    assert_problem(bad, 422, "validation_error")


# --- rate cards ------------------------------------------------------------------------------


def test_rate_card_current_and_invalid_publish(stack: RunningStack, admin: httpx.Client) -> None:
    with stack.client(create_account(stack).key) as http:
        current = http.get("/v1/rate-cards/current").json()
    assert current["version"] >= 1
    skus = {(p["sku"], p["unit"]): p["price_inr"] for p in current["prices"]}
    assert skus[("deepgram/nova-3", "audio_seconds")] == "0.0083"
    for prices, code in [
        ([{"sku": "x/y", "component": "stt", "unit": "characters", "price_inr": "1"}], None),
        ([{"sku": "x/y", "component": "gpu", "unit": "seconds", "price_inr": "1"}], None),
        ([{"sku": "x/y", "component": "stt", "unit": "audio_seconds", "price_inr": 0.5}], None),
        ([{"sku": "x/y", "component": "stt", "unit": "audio_seconds", "price_inr": "-1"}], None),
        ([], None),
    ]:
        response = admin.post("/v1/rate-cards", json={"prices": prices})
        assert_problem(response, 422, code or "validation_error")
    assert admin.get("/v1/rate-cards/current").json()["version"] == current["version"]


# --- osmAPI ----------------------------------------------------------------------------------


def test_api_usage_authorize_charge_and_refusal(stack: RunningStack, orchestrator_key: str) -> None:
    account = create_account(stack)  # ₹50 promo only
    body = {
        "request_id": unique("req"),
        "account_id": account.id,
        "sku": "openai/gpt-4o",
        "input_tokens": 100_000,
        "output_tokens": 20_000,
    }
    with stack.client(orchestrator_key) as http:
        metrics_before = httpx.get(stack.api.metrics_url).text
        ok = http.post("/v1/api-usage/authorize", json={"account_id": account.id})
        assert ok.status_code == 200 and ok.json()["authorized"] is True
        charged = http.post("/v1/api-usage", json=body)
        assert charged.status_code == 200, charged.text
        charge = charged.json()
        # gpt-4o: 100k × 0.000208 + 20k × 0.000833 = ₹20.80 + ₹16.66 = 3746 paisa; margin 1124.
        assert charge["provider_total_paisa"] == 3746
        assert charge["margin_paisa"] == 1124
        assert charge["total_paisa"] == 4870
        assert charge["balance"]["available_paisa"] == 5000 - 4870
        replay = http.post("/v1/api-usage", json=body)
        assert replay.json()["transaction_id"] == charge["transaction_id"]
        before = ledger_state(stack, account)
        conflict = http.post("/v1/api-usage", json={**body, "output_tokens": 1})
        assert_problem(conflict, 409, "conflict")
        unknown = http.post("/v1/api-usage", json={**body, "request_id": unique("r"), "sku": "x/y"})
        assert_problem(unknown, 422, "unknown_sku")
        assert ledger_state(stack, account) == before
        refused = http.post("/v1/api-usage/authorize", json={"account_id": account.id})
        problem = assert_problem(refused, 402, "insufficient_balance")
        assert problem["authorized"] is False and problem["available_paisa"] == 130
        # Finished work is never refused, even below the minimum balance.
        late = http.post("/v1/api-usage", json={**body, "request_id": unique("req")})
        assert late.status_code == 200
        assert late.json()["balance"]["available_paisa"] == 130 - 4870
        missing = http.post("/v1/api-usage/authorize", json={"account_id": "acc_missing"})
        assert_problem(missing, 404, "not_found")
        metrics_after = httpx.get(stack.api.metrics_url).text
    for labels, delta in [
        ('kind="api",reason="insufficient_balance",result="refused"', 1),
        ('kind="api",reason="",result="authorized"', 1),
    ]:
        name = "billing_authorizations_total"
        assert (
            metric_value(metrics_after, name, labels) - metric_value(metrics_before, name, labels)
            >= delta
        )
    latency = "billing_authorize_duration_seconds_count"
    assert (
        metric_value(metrics_after, latency, 'kind="api"')
        - metric_value(metrics_before, latency, 'kind="api"')
        >= 2
    )
    paisa = metric_value(metrics_after, "billing_charged_paisa_total", 'kind="api"')
    assert paisa - metric_value(metrics_before, "billing_charged_paisa_total", 'kind="api"') >= 9740
    assert 'billing_http_requests_total{method="POST",route="/v1/api-usage",status="200"}' in (
        metrics_after
    )
    assert "billing_http_request_duration_seconds_bucket" in metrics_after


# --- refunds ---------------------------------------------------------------------------------


def _fresh_idempotency_key(request: httpx.Request) -> None:
    request.headers.setdefault("Idempotency-Key", f"test-{uuid.uuid4().hex}")


def test_refunds(stack: RunningStack, support_key: str) -> None:
    account = create_account(stack, topup_paisa=30000)
    # Refunds require an Idempotency-Key (tests/api/test_refunds.py); a fresh one each here.
    with stack.client(support_key, event_hooks={"request": [_fresh_idempotency_key]}) as http:
        before = ledger_state(stack, account)
        too_much = http.post(f"/v1/accounts/{account.id}/refunds", json={"amount_paisa": 30001})
        assert_problem(too_much, 422, "refund_exceeds_refundable")
        assert_problem(
            http.post(f"/v1/accounts/{account.id}/refunds", json={"amount_paisa": -5}),
            422,
            "validation_error",
        )
        assert ledger_state(stack, account) == before
        created = http.post(f"/v1/accounts/{account.id}/refunds", json={"amount_paisa": 10000})
        assert created.status_code == 202, created.text
        refund = created.json()
        assert refund["status"] in {"pending", "completed"} and refund["amount_paisa"] == 10000
        rest = http.post(f"/v1/accounts/{account.id}/refunds", json={})
        assert rest.status_code == 202
        assert rest.json()["amount_paisa"] == 20000  # all refundable paid balance; promo stays
        balance = ledger_state(stack, account)[0]
        assert balance["paid_paisa"] == 0 and balance["promo_paisa"] == 5000
        assert_problem(
            http.post(f"/v1/accounts/{account.id}/refunds", json={}),
            422,
            "refund_exceeds_refundable",
        )
        deadline = time.monotonic() + 15
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            fetched = http.get(f"/v1/refunds/{refund['id']}")
            assert fetched.status_code == 200
            status = fetched.json()["status"]
            time.sleep(0.2)
        assert status in {"completed", "failed"}, "RefundWorkflow did not settle the refund"
        assert_problem(http.get("/v1/refunds/ref_missing"), 404, "not_found")


# --- health, metrics, OpenAPI ----------------------------------------------------------------


def test_healthz_checks_postgres_and_temporal(stack: RunningStack) -> None:
    with stack.client() as http:
        response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "temporal": "ok"}


def test_openapi_describes_every_endpoint_with_examples(stack: RunningStack) -> None:
    with stack.client() as http:
        schema = http.get("/openapi.json").json()
    expected = {
        ("post", "/v1/accounts"),
        ("post", "/v1/api-keys"),
        ("delete", "/v1/api-keys/{key_id}"),
        ("get", "/v1/accounts/{account_id}/balance"),
        ("get", "/v1/accounts/{account_id}/transactions"),
        ("post", "/v1/accounts/{account_id}/topups"),
        ("post", "/v1/accounts/{account_id}/coupons/preview"),
        ("post", "/v1/accounts/{account_id}/coupons/redeem"),
        ("post", "/v1/coupons"),
        ("get", "/v1/rate-cards/current"),
        ("post", "/v1/rate-cards"),
        ("post", "/v1/accounts/{account_id}/refunds"),
        ("get", "/v1/refunds/{refund_id}"),
        ("post", "/v1/calls"),
        ("post", "/v1/calls/{call_id}/usage"),
        ("post", "/v1/calls/{call_id}/hangup"),
        ("get", "/v1/calls/{call_id}"),
        ("get", "/v1/accounts/{account_id}/calls"),
        ("post", "/v1/api-usage/authorize"),
        ("post", "/v1/api-usage"),
        ("get", "/healthz"),
    }
    present = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert expected <= present
    assert "ApiKey" in schema["components"]["securitySchemes"]
    for name in ("AccountCreate", "TopUpCreate", "AuthorizeCall", "UsageEventIn", "Problem"):
        assert schema["components"]["schemas"][name].get("examples"), name
    topup = schema["paths"]["/v1/accounts/{account_id}/topups"]["post"]
    assert {"400", "401", "403", "404", "409", "422"} <= topup["responses"].keys()
    assert any(p["name"] == "Idempotency-Key" for p in topup["parameters"])


def test_healthz_is_503_when_temporal_is_down_and_the_ledger_still_answers(
    stack: RunningStack,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = Settings(
        database_url=stack.database_url,
        temporal_address=f"127.0.0.1:{closed_port}",
        admin_api_key=stack.admin_key,
    )
    with ApiServer(settings) as server, httpx.Client(base_url=server.base_url) as http:
        health = http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["postgres"] == "ok"
        assert health.json()["temporal"].startswith("error")
        rate_card = http.get(
            "/v1/rate-cards/current", headers={"Authorization": f"Bearer {stack.admin_key}"}
        )
        assert rate_card.status_code == 200


MUTATING_PATHS = [
    "/v1/accounts",
    "/v1/api-keys",
    "/v1/accounts/{id}/topups",
    "/v1/accounts/{id}/coupons/preview",
    "/v1/accounts/{id}/coupons/redeem",
    "/v1/coupons",
    "/v1/rate-cards",
    "/v1/accounts/{id}/refunds",
    "/v1/calls",
    "/v1/calls/{call}/usage",
    "/v1/calls/{call}/hangup",
    "/v1/api-usage/authorize",
    "/v1/api-usage",
]
BAD_BODIES: list[tuple[str, bytes, int]] = [
    ("malformed", b'{"amount_paisa": ', 400),
    ("wrong type", b'"just a string"', 422),
    ("float money", b'{"amount_paisa": 1.5, "bonus_paisa": 0.5, "input_tokens": 0.5}', 422),
    ("negative", b'{"amount_paisa": -1, "bonus_paisa": -1, "output_tokens": -1}', 422),
]


@pytest.fixture(scope="module")
def untouched_account(stack: RunningStack) -> Account:
    return create_account(stack, topup_paisa=5000)


@pytest.mark.parametrize("path", MUTATING_PATHS)
@pytest.mark.parametrize(("case", "body", "status"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_every_mutating_endpoint_refuses_bad_bodies_and_changes_nothing(
    stack: RunningStack,
    untouched_account: Account,
    path: str,
    case: str,
    body: bytes,
    status: int,
) -> None:
    account = untouched_account
    before = ledger_state(stack, account)
    with stack.client(stack.admin_key) as http:
        rate_card = http.get("/v1/rate-cards/current").json()["version"]
        response = http.post(
            path.format(id=account.id, call="call-unknown-1"),
            content=body,
            headers={"content-type": "application/json"},
        )
        assert_problem(response, status, "validation_error")
        assert http.get("/v1/rate-cards/current").json()["version"] == rate_card
    assert ledger_state(stack, account) == before
