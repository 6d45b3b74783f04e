"""Razorpay through its official SDK: orders, payments, refunds, recurring charges (payouts:
`razorpay_payouts`, signatures: `razorpay_signatures`).

Synchronous (the SDK uses `requests`): call it from activities (a sync activity, or
`asyncio.to_thread`). `api_url` points the SDK anywhere (`RAZORPAY_API_URL`: the local stand-in
in development and tests, Razorpay itself when unset). Results are `razorpay_types` dataclasses
with money in integer paisa; failures are `RazorpayRetryableError` (retry with the same
idempotency) or `RazorpayRejectedError` (final).

Idempotency at the gateway, so a retried activity never moves money twice:
- refunds: `X-Refund-Idempotency` (same key + same body = the same refund; the body is built
  only from the arguments, so a retry sends identical bytes);
- payouts: `X-Payout-Idempotency` (same rule);
- recurring charges: one order per charge; a retry first looks for a payment already made on the
  order and returns it instead of charging again;
- orders and customers have no key: a retried create may leave an unused order behind (it
  expires unpaid) and `fail_existing: "0"` returns the existing customer.
Build keys with `razorpay_transport.idempotency_key(...)`: 32 hex characters fit both of
Razorpay's key rules.
"""

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
from adapters.payments.razorpay_types import (
    RazorpayCustomer,
    RazorpayOrder,
    RazorpayPayment,
    RazorpayRefund,
    RazorpayRetryableError,
)
from core.config import Settings


class RazorpayGateway:
    """Payments in (orders, checkout payments, recurring charges) and refunds back to them."""

    def __init__(
        self,
        key_id: str,
        key_secret: str,
        *,
        api_url: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._transport = RazorpayTransport(key_id, key_secret, api_url, timeout_seconds)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> RazorpayGateway:
        return cls(
            settings.razorpay_key_id or "",
            settings.razorpay_key_secret or "",
            api_url=settings.razorpay_api_url,
            **kwargs,
        )

    @property
    def _sdk(self) -> Any:
        return self._transport.client  # this thread's SDK client

    @property
    def key_id(self) -> str:
        """Public: Checkout needs it in the browser."""
        return self._transport.key_id

    # Orders -------------------------------------------------------------------------------
    def create_order(
        self,
        *,
        amount_paisa: int,
        receipt: str,
        account_id: str,
        notes: Mapping[str, str] | None = None,
        customer_id: str | None = None,
    ) -> RazorpayOrder:
        """An INR order, captured automatically when paid; `notes.account_id` names the payer."""
        body: dict[str, Any] = {
            "amount": require_paisa(amount_paisa),
            "currency": CURRENCY,
            "receipt": receipt,
            "payment_capture": True,
            "notes": {**(notes or {}), "account_id": account_id},
        }
        if customer_id:
            body["customer_id"] = customer_id
        entity = self._transport.call("create order", self._sdk.order.create, body)
        return RazorpayOrder.from_api(entity)

    def fetch_order(self, order_id: str) -> RazorpayOrder:
        return RazorpayOrder.from_api(
            self._transport.call("fetch order", self._sdk.order.fetch, require_id(order_id))
        )

    def order_payments(self, order_id: str) -> list[RazorpayPayment]:
        collection = self._transport.call(
            "fetch order payments", self._sdk.order.payments, require_id(order_id)
        )
        items = collection.get("items")
        return [RazorpayPayment.from_api(item) for item in items or []]

    # Payments -----------------------------------------------------------------------------
    def fetch_payment(self, payment_id: str) -> RazorpayPayment:
        entity = self._transport.call(
            "fetch payment", self._sdk.payment.fetch, require_id(payment_id)
        )
        return RazorpayPayment.from_api(entity)

    def create_customer(
        self,
        *,
        name: str,
        email: str,
        contact: str | None = None,
        notes: Mapping[str, str] | None = None,
    ) -> RazorpayCustomer:
        """A customer to save tokens under; the same details return the same customer."""
        body: dict[str, Any] = {
            "name": name,
            "email": email,
            "fail_existing": "0",
            "notes": dict(notes or {}),
        }
        if contact:
            body["contact"] = contact
        entity = self._transport.call("create customer", self._sdk.customer.create, body)
        return RazorpayCustomer.from_api(entity)

    def charge_recurring(
        self,
        *,
        order_id: str,
        amount_paisa: int,
        customer_id: str,
        token_id: str,
        email: str,
        contact: str | None = None,
        description: str | None = None,
        notes: Mapping[str, str] | None = None,
    ) -> RazorpayPayment:
        """Charge a saved token against `order_id` (create one order per charge).

        Idempotent per order: if the order already has an authorized or captured payment (a
        previous attempt whose answer was lost), that payment is returned and nothing is charged.
        A decline is a `RazorpayRejectedError`; the `payment.failed` webhook follows.
        """
        for payment in self.order_payments(order_id):
            if payment.status in ("authorized", "captured", "refunded"):
                return payment
        body: dict[str, Any] = {
            "order_id": order_id,
            "amount": require_paisa(amount_paisa),
            "currency": CURRENCY,
            "customer_id": customer_id,
            "token": token_id,
            "recurring": "1",
            "email": email,
            "notes": dict(notes or {}),
        }
        if contact:
            body["contact"] = contact
        if description:
            body["description"] = description
        answer = self._transport.call(
            "create recurring payment", self._sdk.payment.createRecurring, body
        )
        payment_id = answer.get("razorpay_payment_id")
        if not isinstance(payment_id, str) or not payment_id:
            raise RazorpayRetryableError("create recurring payment: no razorpay_payment_id")
        return self.fetch_payment(payment_id)

    # Refunds ------------------------------------------------------------------------------
    def refund_payment(
        self,
        *,
        payment_id: str,
        amount_paisa: int,
        idempotency_key: str,
        notes: Mapping[str, str] | None = None,
    ) -> RazorpayRefund:
        """Refund part (or all) of a captured payment, exactly once per `idempotency_key`.

        Retrying with the same key and arguments returns the refund already made, whatever
        happened to the first answer. The result may be `pending`: `refund.processed` /
        `refund.failed` (or `fetch_refund`) settle it.
        """
        body = {
            "amount": require_paisa(amount_paisa),
            "speed": "normal",
            "receipt": require_key(idempotency_key),
            "notes": dict(notes or {}),
        }
        entity = self._transport.call(
            "refund payment",
            self._sdk.payment.refund,
            require_id(payment_id),
            body,
            headers={"X-Refund-Idempotency": idempotency_key},
        )
        return RazorpayRefund.from_api(entity)

    def fetch_refund(self, refund_id: str) -> RazorpayRefund:
        return RazorpayRefund.from_api(
            self._transport.call("fetch refund", self._sdk.refund.fetch, require_id(refund_id))
        )
