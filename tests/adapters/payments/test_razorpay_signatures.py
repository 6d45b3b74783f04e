"""Webhook signatures: the exact HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import razorpay

from adapters.payments.razorpay_signatures import verify_webhook_signature, webhook_signature

BODY = b'{"entity":"event","event":"payment.captured","payload":{}}'
SECRET = "whsec-test"


def test_webhook_signature_accepts_only_the_right_signature() -> None:
    right = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert webhook_signature(BODY, SECRET) == right
    assert verify_webhook_signature(BODY, right, SECRET)
    assert not verify_webhook_signature(BODY, right.upper(), SECRET)
    assert not verify_webhook_signature(BODY, right[:-1] + "0", SECRET)
    assert not verify_webhook_signature(BODY + b" ", right, SECRET)
    assert not verify_webhook_signature(BODY, right, "another-secret")
    assert not verify_webhook_signature(BODY, None, SECRET)
    assert not verify_webhook_signature(BODY, "", SECRET)
    assert not verify_webhook_signature(BODY, "é" * 64, SECRET)
    assert not verify_webhook_signature(BODY, right, None)
    assert not verify_webhook_signature(BODY, webhook_signature(BODY, ""), "")
    # Same verdict as the SDK's own helper.
    sdk = razorpay.Client(auth=("k", "s")).utility
    assert sdk.verify_webhook_signature(BODY.decode(), right, SECRET)


def test_webhook_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    right = webhook_signature(BODY, SECRET)
    assert verify_webhook_signature(BODY, right, SECRET)
    assert not verify_webhook_signature(BODY, "0" * 64, SECRET)
    assert compared == [(right.encode(), right.encode()), (right.encode(), b"0" * 64)]
