"""RazorpayX Payouts: paid balance that came without a gateway payment (bank transfers, admin
top-ups) is refunded to the customer's bank account. `X-Payout-Idempotency` makes each payout
happen once per key, whatever happens to the answers (build keys with `idempotency_key`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.payments.razorpay_transport import (
    CURRENCY,
    DEFAULT_TIMEOUT_SECONDS,
    RazorpayTransport,
    require_id,
    require_key,
    require_paisa,
)
from adapters.payments.razorpay_types import RazorpayNotConfiguredError, RazorpayPayout
from core.config import Settings


class RazorpayPayouts:
    """RazorpayX Payouts: paid balance that came without a gateway payment (bank transfers,
    admin top-ups) goes back to the customer's bank account (`fund_account_id`)."""

    def __init__(
        self,
        key_id: str,
        key_secret: str,
        *,
        account_number: str,
        api_url: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not account_number:
            raise RazorpayNotConfiguredError("a RazorpayX account number is required for payouts")
        self._transport = RazorpayTransport(key_id, key_secret, api_url, timeout_seconds)
        self._account_number = account_number

    @classmethod
    def from_settings(
        cls, settings: Settings, *, account_number: str, **kwargs: Any
    ) -> RazorpayPayouts:
        return cls(
            settings.razorpay_key_id or "",
            settings.razorpay_key_secret or "",
            account_number=account_number,
            api_url=settings.razorpay_api_url,
            **kwargs,
        )

    def create_payout(
        self,
        *,
        fund_account_id: str,
        amount_paisa: int,
        idempotency_key: str,
        reference_id: str,
        purpose: str = "refund",
        mode: str = "IMPS",
        narration: str | None = None,
        notes: Mapping[str, str] | None = None,
    ) -> RazorpayPayout:
        """One payout per `idempotency_key`; a retry returns the payout already made."""
        body: dict[str, Any] = {
            "account_number": self._account_number,
            "fund_account_id": fund_account_id,
            "amount": require_paisa(amount_paisa),
            "currency": CURRENCY,
            "mode": mode,
            "purpose": purpose,
            "queue_if_low_balance": True,
            "reference_id": reference_id,
            "notes": dict(notes or {}),
        }
        if narration:
            body["narration"] = narration
        client = self._transport.client
        entity = self._transport.call(
            "create payout",
            client.post,
            "/v1/payouts",
            body,
            headers={"X-Payout-Idempotency": require_key(idempotency_key)},
        )
        return RazorpayPayout.from_api(entity)

    def fetch_payout(self, payout_id: str) -> RazorpayPayout:
        client = self._transport.client
        path = f"/v1/payouts/{require_id(payout_id)}"
        entity = self._transport.call("fetch payout", client.get, path, {})
        return RazorpayPayout.from_api(entity)
