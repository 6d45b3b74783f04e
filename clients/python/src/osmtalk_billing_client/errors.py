"""What the client raises; `code` is the stable problem code the billing HTTP API uses for the
same refusal, so both paths report alike."""

from __future__ import annotations


class BillingClientError(Exception):
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class CallNotFound(BillingClientError):
    code = "not_found"


class CallEnded(BillingClientError):
    """Usage reported for a call that is already finalized (past the late-usage window)."""

    code = "call_ended"


class InvalidRequest(BillingClientError):
    code = "validation_error"


class BillingUnavailable(BillingClientError):
    """Billing could not record it right now (database or worker down); retrying is safe."""

    code = "billing_unavailable"


class UsageRejected(InvalidRequest):
    """A usage report refused client-side (shape); pricing checks happen in the workflow and
    show up in `status().rejected_events`."""
