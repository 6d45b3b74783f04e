"""Every endpoint of contract §4 × every kind of caller, with the exact status.

Callers: no key, a bad key, the account's customer, another account's customer, orchestrator,
support, admin. A customer asking about another account gets 404, a role that may not call the
endpoint 403, no or a bad key 401; admin may do everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from domain.default_rate_card import DEFAULT_PRICES, TYPICAL_PHONE_CALL_USAGE
from tests.api.conftest import create_account, create_key, unique
from tests.support.stack import RunningStack

CALLERS = ("none", "bad_key", "customer", "other_customer", "orchestrator", "support", "admin")


@dataclass
class World:
    stack: RunningStack
    account_id: str
    other_account_id: str
    keys: dict[str, str | None]
    refund_id: str
    active_call_id: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def admin(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        with self.stack.client(self.stack.admin_key) as http:
            response = http.request(method, path, json=json)
        assert response.status_code < 300, response.text
        body: dict[str, Any] = response.json()
        return body

    def coupon(self) -> str:
        code = unique("RM")
        self.admin("POST", "/v1/coupons", {"code": code, "bonus_paisa": 100})
        return code

    def new_call(self) -> str:
        call_id = unique("rm-call")
        with self.stack.client(self.keys["orchestrator"]) as http:
            response = http.post(
                "/v1/calls",
                json={"call_id": call_id, "account_id": self.account_id, "channel": "phone"},
            )
        assert response.status_code == 200, response.text
        return call_id

    def call(self) -> str:
        if self.active_call_id is None:
            self.active_call_id = self.new_call()
        return self.active_call_id


@pytest.fixture(scope="module")
def world(stack: RunningStack) -> World:
    account = create_account(stack, topup_paisa=1_000_000)
    other = create_account(stack, topup_paisa=10_000)
    keys: dict[str, str | None] = {
        "none": None,
        "bad_key": "osk_not-a-real-key",
        "customer": account.key,
        "other_customer": other.key,
        "orchestrator": create_key(stack, "orchestrator"),
        "support": create_key(stack, "support"),
        "admin": stack.admin_key,
    }
    with stack.client(keys["support"]) as http:
        refund = http.post(
            f"/v1/accounts/{account.id}/refunds",
            json={"amount_paisa": 100},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    assert refund.status_code == 202, refund.text
    return World(stack, account.id, other.id, keys, refund.json()["id"])


Request = Callable[[World], tuple[str, str, Any]]


def _st(none: int, cust: int, other: int, orch: int, support: int, admin: int) -> dict[str, int]:
    auth = 200 if none == 200 else 401
    return {
        "none": none,
        "bad_key": auth,
        "customer": cust,
        "other_customer": other,
        "orchestrator": orch,
        "support": support,
        "admin": admin,
    }


ADMIN_ONLY_201 = _st(401, 403, 403, 403, 403, 201)
ACCOUNT_READ = _st(401, 200, 404, 403, 200, 200)

ROWS: list[tuple[str, Request, dict[str, int]]] = [
    (
        "POST /v1/accounts",
        lambda w: ("POST", "/v1/accounts", {"name": "Matrix", "email": "m@x.example"}),
        ADMIN_ONLY_201,
    ),
    (
        "POST /v1/api-keys",
        lambda w: ("POST", "/v1/api-keys", {"role": "support"}),
        ADMIN_ONLY_201,
    ),
    (
        "DELETE /v1/api-keys/{id}",
        lambda w: (
            "DELETE",
            f"/v1/api-keys/{w.admin('POST', '/v1/api-keys', {'role': 'support'})['id']}",
            None,
        ),
        _st(401, 403, 403, 403, 403, 200),
    ),
    (
        "GET /v1/accounts/{id}",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}", None),
        ACCOUNT_READ,
    ),
    (
        "PATCH /v1/accounts/{id}",
        lambda w: ("PATCH", f"/v1/accounts/{w.account_id}", {"alert_threshold_paisa": 1000}),
        _st(401, 200, 404, 403, 403, 200),
    ),
    (
        "GET /v1/accounts/{id}/transactions.csv",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/transactions.csv", None),
        ACCOUNT_READ,
    ),
    (
        "GET /v1/accounts/{id}/calls.csv",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/calls.csv", None),
        ACCOUNT_READ,
    ),
    (
        "GET /v1/accounts/{id}/statements/{month}",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/statements/2026-01", None),
        ACCOUNT_READ,
    ),
    (
        "GET /v1/accounts/{id}/usage-summary",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/usage-summary", None),
        ACCOUNT_READ,
    ),
    (
        "GET /v1/accounts/{id}/balance",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/balance", None),
        ACCOUNT_READ,
    ),
    (
        "GET /v1/accounts/{id}/transactions",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/transactions", None),
        ACCOUNT_READ,
    ),
    (
        "POST /v1/accounts/{id}/topups",
        lambda w: (
            "POST",
            f"/v1/accounts/{w.account_id}/topups",
            {"amount_paisa": 100, "payment_reference": unique("pay")},
        ),
        ADMIN_ONLY_201,
    ),
    (
        "POST /v1/accounts/{id}/coupons/preview",
        lambda w: ("POST", f"/v1/accounts/{w.account_id}/coupons/preview", {"code": w.coupon()}),
        _st(401, 200, 404, 403, 403, 200),
    ),
    (
        "POST /v1/accounts/{id}/coupons/redeem",
        lambda w: ("POST", f"/v1/accounts/{w.account_id}/coupons/redeem", {"code": w.coupon()}),
        _st(401, 200, 404, 403, 403, 200),
    ),
    (
        "POST /v1/coupons",
        lambda w: ("POST", "/v1/coupons", {"code": unique("NEW"), "bonus_paisa": 500}),
        ADMIN_ONLY_201,
    ),
    (
        "GET /v1/rate-cards/current",
        lambda w: ("GET", "/v1/rate-cards/current", None),
        _st(401, 200, 200, 200, 200, 200),
    ),
    (
        "POST /v1/rate-cards",
        # The same prices as the default card: publishing it changes no call's price.
        lambda w: ("POST", "/v1/rate-cards", {"prices": [p.__dict__ for p in DEFAULT_PRICES]}),
        ADMIN_ONLY_201,
    ),
    (
        "POST /v1/accounts/{id}/refunds",
        lambda w: ("POST", f"/v1/accounts/{w.account_id}/refunds", {"amount_paisa": 100}),
        _st(401, 403, 403, 403, 202, 202),
    ),
    (
        "PUT /v1/accounts/{id}/payout-fund-account",
        lambda w: (
            "PUT",
            f"/v1/accounts/{w.account_id}/payout-fund-account",
            {"fund_account_id": "fa_RoleMatrix01"},
        ),
        _st(401, 403, 403, 403, 200, 200),
    ),
    (
        "GET /v1/refunds/{id}",
        lambda w: ("GET", f"/v1/refunds/{w.refund_id}", None),
        _st(401, 403, 403, 403, 200, 200),
    ),
    (
        "POST /v1/calls",
        lambda w: (
            "POST",
            "/v1/calls",
            {"call_id": unique("rm"), "account_id": w.account_id, "channel": "web"},
        ),
        _st(401, 403, 403, 200, 403, 200),
    ),
    (
        "POST /v1/calls/{id}/usage",
        lambda w: (
            "POST",
            f"/v1/calls/{w.call()}/usage",
            {**TYPICAL_PHONE_CALL_USAGE[1], "event_id": unique("ev")},
        ),
        _st(401, 403, 403, 202, 403, 202),
    ),
    (
        "POST /v1/calls/{id}/hangup",
        lambda w: ("POST", f"/v1/calls/{w.new_call()}/hangup", {"outcome": "completed"}),
        _st(401, 403, 403, 202, 403, 202),
    ),
    (
        "GET /v1/calls/{id}",
        lambda w: ("GET", f"/v1/calls/{w.call()}", None),
        _st(401, 200, 404, 200, 200, 200),
    ),
    (
        "GET /v1/accounts/{id}/calls",
        lambda w: ("GET", f"/v1/accounts/{w.account_id}/calls", None),
        ACCOUNT_READ,
    ),
    (
        "POST /v1/api-usage/authorize",
        lambda w: ("POST", "/v1/api-usage/authorize", {"account_id": w.account_id}),
        _st(401, 403, 403, 200, 403, 200),
    ),
    (
        "POST /v1/api-usage",
        lambda w: (
            "POST",
            "/v1/api-usage",
            {
                "request_id": unique("req"),
                "account_id": w.account_id,
                "sku": "openai/gpt-4o-mini",
                "input_tokens": 1000,
                "output_tokens": 100,
            },
        ),
        _st(401, 403, 403, 200, 403, 200),
    ),
    ("GET /healthz", lambda w: ("GET", "/healthz", None), _st(200, 200, 200, 200, 200, 200)),
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("endpoint", "build", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_role_matrix(
    world: World,
    endpoint: str,
    build: Request,
    expected: dict[str, int],
    caller: str,
) -> None:
    if "/calls" in endpoint and "accounts" not in endpoint:
        assert world.stack.worker is not None, "the billing worker is needed for call endpoints"
    method, path, body = build(world)
    with world.stack.client(world.keys[caller]) as http:
        # A fresh Idempotency-Key: refunds require one, the other endpoints accept it.
        response = http.request(
            method, path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
        )
    assert response.status_code == expected[caller], (endpoint, caller, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == response.status_code
        assert (
            problem["code"]
            == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[response.status_code]
        )
