"""The stand-in's in-memory state and the rules the adapter relies on (thread-safe: one lock).

Every state change that Razorpay announces by webhook calls `emit(event, entities)` with
snapshots of the entities at that moment, e.g. `("order.paid", {"payment": ..., "order": ...})`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

from adapters.payments.razorpay_signatures import payment_signature
from dev.razorpay import entities as e
from dev.razorpay.entities import StandInError, not_found_id

Emit = Callable[[str, dict[str, dict[str, Any]]], object]
FAILABLE = ("refund", "recurring", "payout")
PAYOUT_MODES = frozenset({"IMPS", "NEFT", "RTGS", "UPI", "card", "amazonpay"})


def _collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    items = sorted(items, key=lambda item: item["created_at"], reverse=True)
    return {"entity": "collection", "count": len(items), "items": copy.deepcopy(items)}


class Store:
    def __init__(self, key_secret: str, emit: Emit, *, refund_settle_seconds: float = 0.0) -> None:
        self.lock = threading.RLock()
        self._key_secret = key_secret
        self._emit = emit
        self.refund_settle_seconds = refund_settle_seconds
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.orders: dict[str, dict[str, Any]] = {}
            self.payments: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.customers: dict[str, dict[str, Any]] = {}
            self.tokens: dict[str, dict[str, Any]] = {}
            self.payouts: dict[str, dict[str, Any]] = {}
            self._refund_keys: dict[str, tuple[str, str]] = {}  # key -> (request, refund id)
            self._payout_keys: dict[str, tuple[str, str]] = {}
            self._fail_next: dict[str, list[str]] = {kind: [] for kind in FAILABLE}

    def fail_next(self, kind: str, count: int = 1, reason: str | None = None) -> None:
        """The next `count` refunds / recurring charges / payouts fail with `reason`."""
        if kind not in FAILABLE:
            raise StandInError(400, f"kind must be one of {', '.join(FAILABLE)}", field="kind")
        with self.lock:
            self._fail_next[kind].extend([reason or f"{kind}_failed_by_standin"] * count)

    def _take_failure(self, kind: str) -> str | None:
        queue = self._fail_next[kind]
        return queue.pop(0) if queue else None

    def _publish(self, event: str, **entities: dict[str, Any]) -> None:
        self._emit(event, {name: copy.deepcopy(entity) for name, entity in entities.items()})

    # Look-ups ---------------------------------------------------------------------------
    def _get(self, table: dict[str, dict[str, Any]], entity_id: str) -> dict[str, Any]:
        entity = table.get(entity_id)
        if entity is None:
            raise not_found_id()
        return entity

    def get(self, kind: str, entity_id: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._get(getattr(self, kind), entity_id))

    def order_payments(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            self._get(self.orders, order_id)
            return _collection([p for p in self.payments.values() if p["order_id"] == order_id])

    def payment_refunds(self, payment_id: str) -> dict[str, Any]:
        with self.lock:
            self._get(self.payments, payment_id)
            return _collection([r for r in self.refunds.values() if r["payment_id"] == payment_id])

    def customer_tokens(self, customer_id: str) -> dict[str, Any]:
        with self.lock:
            self._get(self.customers, customer_id)
            tokens = [t for t in self.tokens.values() if t["customer_id"] == customer_id]
            return _collection(tokens)

    # Orders and payments ----------------------------------------------------------------
    def create_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = e.amount(body)
        currency = e.currency(body)
        receipt = e.text(body, "receipt", max_length=40)
        notes = e.notes(body)
        customer_id = e.text(body, "customer_id")
        with self.lock:
            if customer_id is not None:
                self._get(self.customers, customer_id)
            order = e.order_entity(amount, currency, receipt, notes, customer_id)
            self.orders[order["id"]] = order
            return copy.deepcopy(order)

    def _open_order(self, order_id: str) -> dict[str, Any]:
        order = self._get(self.orders, order_id)
        if order["status"] == "paid":
            raise StandInError(400, "Order has already been paid.", field="order_id")
        return order

    def _new_payment(self, order: dict[str, Any], **fields: Any) -> dict[str, Any]:
        payment = e.payment_entity(order, **fields)
        self.payments[payment["id"]] = payment
        order["status"] = "attempted"
        order["attempts"] += 1
        return payment

    def _capture(self, payment: dict[str, Any], order: dict[str, Any]) -> None:
        """Authorize, then capture at once (the orders are created with payment_capture)."""
        payment["status"] = "authorized"
        self._publish("payment.authorized", payment=payment)
        payment["status"] = "captured"
        payment["captured"] = True
        self._publish("payment.captured", payment=payment)
        order["amount_paid"] += payment["amount"]
        order["amount_due"] = max(order["amount"] - order["amount_paid"], 0)
        if order["amount_paid"] >= order["amount"]:
            order["status"] = "paid"
            self._publish("order.paid", payment=payment, order=order)

    def _fail(self, payment: dict[str, Any], reason: str) -> None:
        payment.update(
            status="failed",
            error_code="BAD_REQUEST_ERROR",
            error_description="Payment failed (declined in the Razorpay stand-in).",
            error_source="customer",
            error_step="payment_authorization",
            error_reason=reason,
        )
        self._publish("payment.failed", payment=payment)

    def _saved_token(self, order: dict[str, Any], email: str, contact: str) -> tuple[str, str]:
        customer_id = order.get("customer_id")
        if customer_id is None:
            customer = e.customer_entity("Stand-in customer", email, contact)
            self.customers[customer["id"]] = customer
            customer_id = customer["id"]
        token = e.token_entity(customer_id)
        self.tokens[token["id"]] = token
        return customer_id, token["id"]

    def pay_order(
        self,
        order_id: str,
        *,
        save_method: bool = False,
        amount_paisa: int | None = None,
        currency: str | None = None,
        email: str = "customer@example.com",
        contact: str = "+919000090000",
    ) -> dict[str, Any]:
        """What the checkout page's Pay button does. `amount_paisa`/`currency` override the
        order's, to test how a mismatched payment is handled."""
        with self.lock:
            order = self._open_order(order_id)
            customer_id = token_id = None
            if save_method:
                customer_id, token_id = self._saved_token(order, email, contact)
            payment = self._new_payment(
                order,
                amount_paisa=order["amount"] if amount_paisa is None else amount_paisa,
                currency_code=currency or order["currency"],
                email=email,
                contact=contact,
                customer_id=customer_id or order.get("customer_id"),
                token_id=token_id,
            )
            self._capture(payment, order)
            return {
                "payment": copy.deepcopy(payment),
                "order": copy.deepcopy(order),
                "razorpay_signature": payment_signature(order_id, payment["id"], self._key_secret),
            }

    def fail_order(self, order_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """What the checkout page's Fail button does."""
        with self.lock:
            order = self._open_order(order_id)
            payment = self._new_payment(
                order,
                amount_paisa=order["amount"],
                currency_code=order["currency"],
                email="customer@example.com",
                contact="+919000090000",
                customer_id=order.get("customer_id"),
                token_id=None,
            )
            self._fail(payment, reason or "payment_failed")
            return copy.deepcopy(payment)

    def create_recurring(self, body: Mapping[str, Any]) -> dict[str, Any]:
        order_id = e.text(body, "order_id", required=True) or ""
        customer_id = e.text(body, "customer_id", required=True) or ""
        token_id = e.text(body, "token", required=True) or ""
        email = e.text(body, "email", required=True) or ""
        contact = e.text(body, "contact")
        amount = e.amount(body)
        currency = e.currency(body)
        if str(body.get("recurring")).lower() not in ("1", "true"):
            raise StandInError(400, "The recurring field must be 1.", field="recurring")
        with self.lock:
            order = self._open_order(order_id)
            self._get(self.customers, customer_id)
            token = self._get(self.tokens, token_id)
            if token["customer_id"] != customer_id:
                raise StandInError(400, "The token does not belong to the customer.", field="token")
            if amount != order["amount"]:
                raise StandInError(400, "The amount must match the order amount.", field="amount")
            payment = self._new_payment(
                order,
                amount_paisa=amount,
                currency_code=currency,
                email=email,
                contact=contact,
                customer_id=customer_id,
                token_id=token_id,
                recurring=True,
            )
            failure = self._take_failure("recurring")
            if failure is not None:
                self._fail(payment, failure)
                raise StandInError(
                    400,
                    "Payment failed",
                    reason=failure,
                    source="bank",
                    step="payment_authorization",
                    metadata={"payment_id": payment["id"], "order_id": order_id},
                )
            self._capture(payment, order)
            return {
                "razorpay_payment_id": payment["id"],
                "razorpay_order_id": order_id,
                "razorpay_signature": payment_signature(order_id, payment["id"], self._key_secret),
            }

    # Refunds ----------------------------------------------------------------------------
    def create_refund(
        self, payment_id: str, body: Mapping[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        key = e.refund_idempotency_key(idempotency_key)
        with self.lock:
            payment = self._get(self.payments, payment_id)
            request = e.fingerprint(payment_id, body)
            if key is not None and key in self._refund_keys:
                seen, refund_id = self._refund_keys[key]
                if seen != request:
                    raise StandInError(
                        400, "Different request with the same idempotency key has already been "
                        "processed.", reason="NA", source="NA", step="NA",
                    )  # fmt: skip
                return copy.deepcopy(self.refunds[refund_id])
            if not payment["captured"]:
                raise StandInError(400, "Only captured payments can be refunded.")
            remaining = payment["amount"] - payment["amount_refunded"]
            amount = remaining if body.get("amount") is None else e.amount(body)
            if amount > remaining or remaining <= 0:
                raise StandInError(
                    400,
                    "The refund amount provided is greater than amount captured",
                    field="amount",
                )
            refund = e.refund_entity(
                payment, amount, e.text(body, "receipt", max_length=40), e.notes(body)
            )
            self.refunds[refund["id"]] = refund
            if key is not None:
                self._refund_keys[key] = (request, refund["id"])
            self._adjust_refunded(payment, amount)
            failure = self._take_failure("refund")
            if failure is None and self.refund_settle_seconds <= 0:
                self._settle_refund(refund["id"], None)
            else:
                # A failing refund is accepted first (pending) and fails later, as at Razorpay.
                delay = max(self.refund_settle_seconds, 0.05)
                timer = threading.Timer(delay, self._settle_refund, (refund["id"], failure))
                timer.daemon = True
                timer.start()
            return copy.deepcopy(refund)

    def _adjust_refunded(self, payment: dict[str, Any], delta: int) -> None:
        payment["amount_refunded"] += delta
        refunded = payment["amount_refunded"]
        full = refunded >= payment["amount"]
        payment["refund_status"] = None if refunded == 0 else "full" if full else "partial"
        payment["status"] = "refunded" if full else "captured"

    def _settle_refund(self, refund_id: str, failure: str | None) -> None:
        with self.lock:
            refund = self.refunds.get(refund_id)
            if refund is None or refund["status"] != "pending":
                return  # reset meanwhile, or already settled
            payment = self.payments[refund["payment_id"]]
            if failure is None:
                refund["status"] = "processed"
                self._publish("refund.processed", refund=refund, payment=payment)
            else:
                refund["status"] = "failed"
                self._adjust_refunded(payment, -refund["amount"])
                self._publish("refund.failed", refund=refund, payment=payment)

    # Customers and payouts --------------------------------------------------------------
    def create_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = e.text(body, "name", max_length=50)
        email = e.text(body, "email", max_length=64)
        contact = e.text(body, "contact", max_length=15)
        with self.lock:
            for customer in self.customers.values():
                if customer["email"] == email and customer["contact"] == contact:
                    if str(body.get("fail_existing", "1")) == "0":
                        return copy.deepcopy(customer)
                    raise StandInError(400, "Customer already exists for the merchant")
            customer = e.customer_entity(name, email, contact)
            customer["notes"] = e.notes(body) or []
            self.customers[customer["id"]] = customer
            return copy.deepcopy(customer)

    def create_payout(self, body: Mapping[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        key = e.payout_idempotency_key(idempotency_key)
        e.text(body, "account_number", required=True)
        e.text(body, "fund_account_id", required=True)
        e.text(body, "purpose", required=True)
        e.text(body, "reference_id", max_length=40)
        e.text(body, "narration", max_length=30)
        e.currency(body)
        amount = e.amount(body)
        if body.get("mode") not in PAYOUT_MODES:
            raise StandInError(400, "The selected mode is invalid.", field="mode")
        with self.lock:
            request = e.fingerprint(body)
            if key in self._payout_keys:
                seen, payout_id = self._payout_keys[key]
                if seen != request:
                    raise StandInError(
                        400, "Different request body sent for the same idempotency key",
                        field="X-Payout-Idempotency",
                    )  # fmt: skip
                return copy.deepcopy(self.payouts[payout_id])
            payout = e.payout_entity(body, amount)
            self.payouts[payout["id"]] = payout
            self._payout_keys[key] = (request, payout["id"])
            failure = self._take_failure("payout")
            if failure is None:
                payout.update(status="processed", utr=e.new_id("STANDIN").replace("_", ""))
                self._publish("payout.processed", payout=payout)
            else:
                payout.update(
                    status="failed",
                    status_details={
                        "source": "beneficiary_bank",
                        "reason": failure,
                        "description": "Payout failed in the Razorpay stand-in.",
                    },
                )
                self._publish("payout.failed", payout=payout)
            return copy.deepcopy(payout)
