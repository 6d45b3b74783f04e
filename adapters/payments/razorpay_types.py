"""What the Razorpay adapter returns and raises: plain dataclasses (money in integer paisa) and
two error kinds, so activities can tell "try again" from "stop".

- `RazorpayRetryableError`: 5xx, 429, 409 (Razorpay: "a request with this idempotency key is
  still being processed"), timeouts, connection errors, unreadable responses. Retry with the same
  idempotency key; nothing is lost or doubled.
- `RazorpayRejectedError`: any other 4xx (validation, unknown id, amount above the refundable,
  a declined recurring charge, bad credentials). Retrying the same request cannot succeed: map it
  to `ApplicationError(non_retryable=True)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RazorpayError(Exception):
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        reason: str | None = None,
        field: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.description = message
        self.status = status
        self.code = code
        self.reason = reason
        self.field = field
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        code = f" {self.code}" if self.code else ""
        return f"{self.description} ({where}{code})"


class RazorpayRetryableError(RazorpayError):
    retryable = True


class RazorpayRejectedError(RazorpayError):
    retryable = False


class RazorpayNotConfiguredError(RazorpayError):
    """No key id/secret: a deployment error, not something a retry fixes."""


def _int(entity: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = entity.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RazorpayRetryableError(f"Razorpay response has no integer {key!r}")
    return value


def _str(entity: Mapping[str, Any], key: str) -> str:
    value = entity.get(key)
    if not isinstance(value, str) or not value:
        raise RazorpayRetryableError(f"Razorpay response has no {key!r}")
    return value


def _opt_str(entity: Mapping[str, Any], key: str) -> str | None:
    value = entity.get(key)
    return None if value is None else str(value)


def _notes(entity: Mapping[str, Any]) -> dict[str, str]:
    # Razorpay sends empty notes as [] and filled ones as an object.
    notes = entity.get("notes")
    if isinstance(notes, Mapping):
        return {str(k): str(v) for k, v in notes.items()}
    return {}


@dataclass(frozen=True)
class RazorpayOrder:
    id: str
    amount_paisa: int
    amount_paid_paisa: int
    amount_due_paisa: int
    currency: str
    receipt: str | None
    status: str  # created | attempted | paid
    attempts: int
    created_at: int  # Unix seconds
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, entity: Mapping[str, Any]) -> RazorpayOrder:
        return cls(
            id=_str(entity, "id"),
            amount_paisa=_int(entity, "amount"),
            amount_paid_paisa=_int(entity, "amount_paid", 0),
            amount_due_paisa=_int(entity, "amount_due", 0),
            currency=_str(entity, "currency"),
            receipt=_opt_str(entity, "receipt"),
            status=_str(entity, "status"),
            attempts=_int(entity, "attempts", 0),
            created_at=_int(entity, "created_at", 0),
            notes=_notes(entity),
        )


@dataclass(frozen=True)
class RazorpayPayment:
    id: str
    order_id: str | None
    amount_paisa: int
    currency: str
    status: str  # created | authorized | captured | refunded | failed
    captured: bool
    amount_refunded_paisa: int
    refund_status: str | None  # None | partial | full
    method: str | None
    customer_id: str | None
    token_id: str | None
    email: str | None
    contact: str | None
    error_code: str | None
    error_description: str | None
    error_reason: str | None
    created_at: int
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def refundable_paisa(self) -> int:
        return self.amount_paisa - self.amount_refunded_paisa if self.captured else 0

    @classmethod
    def from_api(cls, entity: Mapping[str, Any]) -> RazorpayPayment:
        return cls(
            id=_str(entity, "id"),
            order_id=_opt_str(entity, "order_id"),
            amount_paisa=_int(entity, "amount"),
            currency=_str(entity, "currency"),
            status=_str(entity, "status"),
            captured=bool(entity.get("captured")),
            amount_refunded_paisa=_int(entity, "amount_refunded", 0),
            refund_status=_opt_str(entity, "refund_status"),
            method=_opt_str(entity, "method"),
            customer_id=_opt_str(entity, "customer_id"),
            token_id=_opt_str(entity, "token_id"),
            email=_opt_str(entity, "email"),
            contact=_opt_str(entity, "contact"),
            error_code=_opt_str(entity, "error_code"),
            error_description=_opt_str(entity, "error_description"),
            error_reason=_opt_str(entity, "error_reason"),
            created_at=_int(entity, "created_at", 0),
            notes=_notes(entity),
        )


@dataclass(frozen=True)
class RazorpayRefund:
    id: str
    payment_id: str
    amount_paisa: int
    currency: str
    status: str  # pending | processed | failed
    receipt: str | None
    speed_processed: str | None
    created_at: int
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, entity: Mapping[str, Any]) -> RazorpayRefund:
        return cls(
            id=_str(entity, "id"),
            payment_id=_str(entity, "payment_id"),
            amount_paisa=_int(entity, "amount"),
            currency=_str(entity, "currency"),
            status=_str(entity, "status"),
            receipt=_opt_str(entity, "receipt"),
            speed_processed=_opt_str(entity, "speed_processed"),
            created_at=_int(entity, "created_at", 0),
            notes=_notes(entity),
        )


@dataclass(frozen=True)
class RazorpayCustomer:
    id: str
    name: str | None
    email: str | None
    contact: str | None

    @classmethod
    def from_api(cls, entity: Mapping[str, Any]) -> RazorpayCustomer:
        return cls(
            id=_str(entity, "id"),
            name=_opt_str(entity, "name"),
            email=_opt_str(entity, "email"),
            contact=_opt_str(entity, "contact"),
        )


@dataclass(frozen=True)
class RazorpayPayout:
    id: str
    fund_account_id: str
    amount_paisa: int
    currency: str
    # queued | pending | processing | processed | reversed | cancelled | rejected | failed
    status: str
    mode: str | None
    purpose: str | None
    reference_id: str | None
    utr: str | None
    failure_reason: str | None
    created_at: int
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, entity: Mapping[str, Any]) -> RazorpayPayout:
        details = entity.get("status_details")
        reason = details.get("description") if isinstance(details, Mapping) else None
        return cls(
            id=_str(entity, "id"),
            fund_account_id=_str(entity, "fund_account_id"),
            amount_paisa=_int(entity, "amount"),
            currency=_str(entity, "currency"),
            status=_str(entity, "status"),
            mode=_opt_str(entity, "mode"),
            purpose=_opt_str(entity, "purpose"),
            reference_id=_opt_str(entity, "reference_id"),
            utr=_opt_str(entity, "utr"),
            failure_reason=None if reason is None else str(reason),
            created_at=_int(entity, "created_at", 0),
            notes=_notes(entity),
        )
