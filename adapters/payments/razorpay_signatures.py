"""Razorpay's HMAC-SHA256 signatures: webhooks and checkout callbacks.

- Webhooks: `X-Razorpay-Signature` is the hex HMAC-SHA256 of the raw request body, keyed with the
  webhook secret. Verify the bytes as received: re-serialising parsed JSON changes them.
- Checkout callbacks (and the recurring-payment response): `razorpay_signature` is the hex
  HMAC-SHA256 of `"{order_id}|{payment_id}"`, keyed with the API key secret.

Comparisons are constant-time (`hmac.compare_digest`). The local stand-in signs with these same
functions, so the rule lives in one place.
"""

from __future__ import annotations

import hashlib
import hmac


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _matches(expected: str, signature: str | None) -> bool:
    if not signature:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may carry anything.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def webhook_signature(raw_body: bytes, secret: str) -> str:
    return _hex_hmac(secret, raw_body)


def verify_webhook_signature(raw_body: bytes, signature: str | None, secret: str | None) -> bool:
    """True only for the exact signature of these bytes; a missing secret accepts nothing."""
    if not secret:
        return False
    return _matches(webhook_signature(raw_body, secret), signature)


def payment_signature(order_id: str, payment_id: str, key_secret: str) -> str:
    return _hex_hmac(key_secret, f"{order_id}|{payment_id}".encode())


def verify_payment_signature(
    order_id: str, payment_id: str, signature: str | None, key_secret: str | None
) -> bool:
    if not key_secret:
        return False
    return _matches(payment_signature(order_id, payment_id, key_secret), signature)
