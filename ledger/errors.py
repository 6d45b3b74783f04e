"""Business errors. Each carries its HTTP status and a stable `code` for problem+json."""

from __future__ import annotations


class BillingError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(BillingError):
    status_code = 404
    code = "not_found"


class ValidationFailed(BillingError):
    status_code = 422
    code = "validation_error"


class InsufficientBalance(BillingError):
    status_code = 402
    code = "insufficient_balance"


class Conflict(BillingError):
    """The same idempotency key with a different request, or a state that forbids the change."""

    status_code = 409
    code = "conflict"


class InvalidCoupon(BillingError):
    status_code = 422
    code = "invalid_coupon"


class RefundNotAllowed(BillingError):
    status_code = 422
    code = "refund_exceeds_refundable"
