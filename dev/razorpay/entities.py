"""Razorpay-shaped entities and request checks for the stand-in (field names and values as in
Razorpay's API reference: orders, payments, refunds, customers, tokens, payouts)."""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from collections.abc import Mapping
from typing import Any

from domain.money import format_inr

_ID_ALPHABET = string.ascii_letters + string.digits
_REFUND_KEY = re.compile(r"[A-Za-z0-9_-]{10,}")
_PAYOUT_KEY = re.compile(r"[A-Za-z0-9_\- ]{4,36}")


class StandInError(Exception):
    """An error answer in Razorpay's shape: `{"error": {"code", "description", ...}}`."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        code: str = "BAD_REQUEST_ERROR",
        field: str | None = None,
        reason: str = "input_validation_failed",
        source: str = "business",
        step: str = "payment_initiation",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.payload: dict[str, Any] = {
            "error": {
                "code": code,
                "description": description,
                "source": source,
                "step": step,
                "reason": reason,
                "metadata": dict(metadata or {}),
                "field": field,
            }
        }


def not_found_id() -> StandInError:
    return StandInError(400, "The id provided does not exist", reason="NA", source="NA", step="NA")


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def now() -> int:
    return int(time.time())


def fingerprint(*parts: Any) -> str:
    """What "the same request" means for idempotency keys."""
    return json.dumps(parts, sort_keys=True, default=str)


# Request checks -----------------------------------------------------------------------------
def amount(body: Mapping[str, Any], *, minimum: int = 100, name: str = "amount") -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StandInError(400, f"The {name} must be an integer.", field=name)
    if value < minimum:
        raise StandInError(400, f"The {name} must be atleast {format_inr(minimum)}.", field=name)
    return value


def text(
    body: Mapping[str, Any], name: str, *, max_length: int = 255, required: bool = False
) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise StandInError(400, f"The {name} field is required.", field=name)
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise StandInError(400, f"The {name} must be a string.", field=name)
    value = str(value)
    if len(value) > max_length:
        raise StandInError(
            400, f"The {name} may not be greater than {max_length} characters.", field=name
        )
    return value


def currency(body: Mapping[str, Any]) -> str:
    value = text(body, "currency", max_length=3, required=True) or ""
    if value != "INR":
        raise StandInError(400, "Currency is not supported", field="currency")
    return value


def notes(body: Mapping[str, Any]) -> dict[str, str]:
    value = body.get("notes")
    if value is None or value == []:
        return {}
    if not isinstance(value, Mapping) or len(value) > 15:
        raise StandInError(400, "notes should be an object of at most 15 keys.", field="notes")
    for key, item in value.items():
        if not isinstance(item, str | int | float) or len(str(item)) > 256:
            raise StandInError(400, f"notes.{key} should be at most 256 characters.", field="notes")
    return {str(k): str(v) for k, v in value.items()}


def refund_idempotency_key(value: str | None) -> str | None:
    if value is not None and not _REFUND_KEY.fullmatch(value):
        raise StandInError(
            400,
            "The idempotency key must be at least 10 characters of letters, digits, - or _.",
            field="X-Refund-Idempotency",
        )
    return value


def payout_idempotency_key(value: str | None) -> str:
    if not value:
        raise StandInError(
            400,
            "Idempotency key is missing. Include idempotency header and key in the request.",
            field="X-Payout-Idempotency",
        )
    if not _PAYOUT_KEY.fullmatch(value):
        raise StandInError(400, "Invalid idempotency key.", field="X-Payout-Idempotency")
    return value


# Entities -----------------------------------------------------------------------------------
def order_entity(
    amount_paisa: int,
    currency_code: str,
    receipt: str | None,
    order_notes: dict[str, str],
    customer_id: str | None,
) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": new_id("order"),
        "entity": "order",
        "amount": amount_paisa,
        "amount_paid": 0,
        "amount_due": amount_paisa,
        "currency": currency_code,
        "receipt": receipt,
        "offer_id": None,
        "status": "created",
        "attempts": 0,
        "notes": order_notes or [],
        "created_at": now(),
    }
    if customer_id:
        order["customer_id"] = customer_id
    return order


def payment_entity(
    order: Mapping[str, Any],
    *,
    amount_paisa: int,
    currency_code: str,
    email: str,
    contact: str | None,
    customer_id: str | None,
    token_id: str | None,
    recurring: bool = False,
) -> dict[str, Any]:
    return {
        "id": new_id("pay"),
        "entity": "payment",
        "amount": amount_paisa,
        "currency": currency_code,
        "status": "created",
        "order_id": order["id"],
        "invoice_id": None,
        "international": False,
        "method": "card",
        "amount_refunded": 0,
        "refund_status": None,
        "captured": False,
        "description": order.get("receipt"),
        "card_id": new_id("card"),
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": email,
        "contact": contact,
        "customer_id": customer_id,
        "token_id": token_id,
        "recurring": recurring,
        "notes": order.get("notes") or [],
        "fee": 0,
        "tax": 0,
        "error_code": None,
        "error_description": None,
        "error_source": None,
        "error_step": None,
        "error_reason": None,
        "acquirer_data": {"auth_code": str(secrets.randbelow(900000) + 100000)},
        "created_at": now(),
    }


def refund_entity(
    payment: Mapping[str, Any], amount_paisa: int, receipt: str | None, refund_notes: dict[str, str]
) -> dict[str, Any]:
    return {
        "id": new_id("rfnd"),
        "entity": "refund",
        "amount": amount_paisa,
        "currency": payment["currency"],
        "payment_id": payment["id"],
        "notes": refund_notes or [],
        "receipt": receipt,
        "acquirer_data": {"arn": None},
        "created_at": now(),
        "batch_id": None,
        "status": "pending",
        "speed_processed": "normal",
        "speed_requested": "normal",
    }


def customer_entity(name: str | None, email: str | None, contact: str | None) -> dict[str, Any]:
    return {
        "id": new_id("cust"),
        "entity": "customer",
        "name": name,
        "email": email,
        "contact": contact,
        "gstin": None,
        "notes": [],
        "created_at": now(),
    }


def token_entity(customer_id: str) -> dict[str, Any]:
    created = now()
    return {
        "id": new_id("token"),
        "entity": "token",
        "token": "".join(secrets.choice(_ID_ALPHABET) for _ in range(14)),
        "bank": None,
        "wallet": None,
        "method": "card",
        "card": {
            "entity": "card",
            "name": "Stand-in Test Card",
            "last4": "1111",
            "network": "Visa",
            "type": "credit",
            "issuer": None,
            "international": False,
            "emi": False,
            "expiry_month": 12,
            "expiry_year": 2035,
        },
        "recurring": True,
        "recurring_details": {"status": "confirmed", "failure_reason": None},
        "auth_type": None,
        "mrn": None,
        "used_at": created,
        "created_at": created,
        "expired_at": created + 5 * 365 * 86400,
        "dcc_enabled": False,
        # Not in Razorpay's token entity; kept to check a token against its customer.
        "customer_id": customer_id,
    }


def payout_entity(body: Mapping[str, Any], amount_paisa: int) -> dict[str, Any]:
    return {
        "id": new_id("pout"),
        "entity": "payout",
        "fund_account_id": body["fund_account_id"],
        "amount": amount_paisa,
        "currency": body["currency"],
        "notes": notes(body) or [],
        "fees": 0,
        "tax": 0,
        "status": "processing",
        "utr": None,
        "mode": body.get("mode"),
        "purpose": body.get("purpose"),
        "reference_id": body.get("reference_id"),
        "narration": body.get("narration"),
        "batch_id": None,
        "status_details": None,
        "created_at": now(),
    }
