"""Checkouts and the Razorpay webhook: what the endpoints do.

Creating a checkout calls the gateway, which can be down: the order is created first (a gateway
5xx or timeout is a 503 `payment_gateway_unavailable`, nothing stored), then its
`CheckoutWorkflow` is started (Temporal down: 503, nothing stored; the unpaid order at the
gateway is harmless), and only then the checkout row is written.

The webhook stores each signed event in `gateway_events` and hands it to Temporal
(`dispatch_event`, the one place that decides where an event goes) before answering 2xx; if
Temporal cannot take it, 503 and Razorpay delivers it again."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session

from adapters.checkout_events import signal_gateway_event, start_checkout_workflow
from adapters.payments.razorpay_signatures import verify_webhook_signature
from adapters.payments.razorpay_types import RazorpayError, RazorpayRetryableError
from adapters.refund_events import refund_part_notice, signal_refund_part
from api.deps import BillingState, run_db
from api.errors import ApiError
from api.payments.schemas import CheckoutCreated, CheckoutOut, UnmatchedPayment, WebhookAck
from db.payment_models import Checkout, GatewayEvent
from domain.contracts.payments import GatewayEventRef
from domain.payments import REFUND_EVENTS, checkout_amount_problem
from ledger import accounts, payments
from ledger.errors import ValidationFailed
from ledger.posting import new_id, utcnow

log = logging.getLogger("api.payments")
MAX_EVENT_ID_LENGTH = 100


def receipt_url(checkout: Checkout) -> str | None:
    return f"/billing/receipts/{checkout.id}" if checkout.status == "paid" else None


def checkout_out(checkout: Checkout) -> CheckoutOut:
    return CheckoutOut(
        checkout_id=checkout.id,
        account_id=checkout.account_id,
        order_id=checkout.order_id,
        amount_paisa=checkout.amount_paisa,
        status=checkout.status,  # type: ignore[arg-type]
        kind=checkout.kind,  # type: ignore[arg-type]
        save_method=checkout.save_method,
        payment_id=checkout.payment_id,
        failure_reason=checkout.failure_reason,
        created_at=checkout.created_at,
        expires_at=checkout.expires_at,
        paid_at=checkout.paid_at,
        receipt_url=receipt_url(checkout),
    )


def _gateway(state: BillingState) -> Any:
    gateway = state.razorpay
    if gateway is None:
        raise ApiError(
            503, "payments_not_configured", "RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET are not set"
        )
    return gateway


async def create_checkout(
    state: BillingState, account_id: str, amount_paisa: int, save_method: bool
) -> CheckoutCreated:
    settings = state.settings
    problem = checkout_amount_problem(
        amount_paisa, min_paisa=settings.checkout_min_paisa, max_paisa=settings.checkout_max_paisa
    )
    if problem is not None:
        raise ValidationFailed(problem)
    factory = state.session_factory
    account = await run_db(factory, lambda s: accounts.get_account(s, account_id))
    gateway = _gateway(state)
    client = state.temporal_client
    if client is None:
        raise ApiError(503, "temporal_unavailable", state.temporal_error or "no Temporal client")
    checkout_id = new_id("chk")
    try:
        customer_id = None
        if save_method:  # tokens are saved under a gateway customer
            customer = await anyio.to_thread.run_sync(
                lambda: gateway.create_customer(
                    name=account.name, email=account.email, notes={"account_id": account_id}
                )
            )
            customer_id = customer.id
        order = await anyio.to_thread.run_sync(
            lambda: gateway.create_order(
                amount_paisa=amount_paisa,
                receipt=checkout_id,
                account_id=account_id,
                notes={"checkout_id": checkout_id},
                customer_id=customer_id,
            )
        )
    except RazorpayRetryableError as exc:
        log.warning("checkout for %s: gateway unavailable: %s", account_id, exc)
        raise ApiError(
            503,
            "payment_gateway_unavailable",
            "the payment gateway is not answering; nothing was charged, try again shortly",
        ) from exc
    except RazorpayError as exc:
        log.error("checkout for %s: gateway refused: %s", account_id, exc)
        raise ApiError(
            503, "payment_gateway_error", f"the payment gateway refused the order: {exc}"
        ) from exc
    try:
        await start_checkout_workflow(client, order.id, task_queue=settings.task_queue)
    except Exception as exc:
        log.warning("checkout %s: Temporal unavailable: %s", checkout_id, exc)
        raise ApiError(503, "temporal_unavailable", "cannot start the checkout now") from exc
    expires_at = utcnow() + timedelta(seconds=settings.checkout_expiry_seconds)

    def store(session: Session) -> CheckoutOut:
        checkout = payments.create_checkout(
            session,
            checkout_id=checkout_id,
            account_id=account_id,
            order_id=order.id,
            amount_paisa=amount_paisa,
            expires_at=expires_at,
            save_method=save_method,
        )
        session.flush()
        session.refresh(checkout)
        return checkout_out(checkout)

    out = await run_db(factory, store)
    return CheckoutCreated(**out.model_dump(), key_id=gateway.key_id)


# --- webhook ---------------------------------------------------------------------------------


def dedupe_key(raw_body: bytes, event_id: str | None) -> str:
    """Razorpay's event id (the same for a redelivery and a duplicate), else the body's hash."""
    if event_id and len(event_id) <= MAX_EVENT_ID_LENGTH:
        return f"event:{event_id}"
    return "sha256:" + hashlib.sha256(raw_body).hexdigest()


def parse_event(raw_body: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_payload", "the webhook body is not JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise ApiError(400, "invalid_payload", "not a Razorpay event envelope")
    return body


async def receive_webhook(
    state: BillingState, raw_body: bytes, signature: str | None, event_id: str | None
) -> WebhookAck:
    secret = state.settings.razorpay_webhook_secret
    if not verify_webhook_signature(raw_body, signature, secret):
        raise ApiError(400, "invalid_signature", "missing or wrong X-Razorpay-Signature")
    body = parse_event(raw_body)
    key = dedupe_key(raw_body, event_id)

    def store(session: Session) -> tuple[int, str, str | None, str | None, str | None]:
        event, facts = payments.record_event(session, dedupe_key=key, body=body)
        return event.id, event.status, event.disposition, facts.order_id, facts.payment_id

    row_id, status, disposition, order_id, payment_id = await run_db(state.session_factory, store)
    if status != "processed":
        await dispatch_event(state, row_id, body, order_id=order_id, payment_id=payment_id)
    return WebhookAck(event_id=row_id, disposition=disposition)


async def dispatch_event(
    state: BillingState,
    row_id: int,
    body: Mapping[str, Any],
    *,
    order_id: str | None,
    payment_id: str | None,
) -> None:
    """Where a stored, not yet settled event goes. Payment and order events: the order's
    `CheckoutWorkflow` (signal-with-start). Refund events: the signal `refund_part_event` of the
    `RefundWorkflow` named by the refund's `notes.refund_id` (part: `notes.part_no`); one not
    ours, or whose refund has finished, stays stored (disposition `refund_event`)."""
    event = str(body.get("event"))
    if event in REFUND_EVENTS:
        await _dispatch_refund_event(state, row_id, body)
        return
    if order_id is None:
        return
    client = state.temporal_client
    if client is None:
        raise ApiError(503, "temporal_unavailable", state.temporal_error or "no Temporal client")
    try:
        await signal_gateway_event(
            client,
            order_id,
            GatewayEventRef(event_row_id=row_id, event=event, payment_id=payment_id),
            task_queue=state.settings.task_queue,
        )
    except Exception as exc:
        log.warning("webhook event %s for order %s not handed over: %s", row_id, order_id, exc)
        raise ApiError(503, "temporal_unavailable", "event stored; deliver it again") from exc


async def _dispatch_refund_event(state: BillingState, row_id: int, body: Mapping[str, Any]) -> None:
    notice = refund_part_notice(body, row_id)
    if notice is None:
        return
    client = state.temporal_client
    if client is None:
        raise ApiError(503, "temporal_unavailable", state.temporal_error or "no Temporal client")
    try:
        await signal_refund_part(client, notice)
    except Exception as exc:
        log.warning("refund event %s for %s not handed over: %s", row_id, notice.refund_id, exc)
        raise ApiError(503, "temporal_unavailable", "event stored; deliver it again") from exc


def unmatched_out(event: GatewayEvent) -> UnmatchedPayment:
    return UnmatchedPayment(
        event_id=event.id,
        event=event.event,
        disposition=event.disposition or "",
        detail=event.detail,
        payment_id=event.payment_id,
        order_id=event.order_id,
        account_id=event.account_id,
        amount_paisa=event.amount_paisa,
        currency=event.currency,
        deliveries=event.deliveries,
        received_at=event.received_at,
    )
