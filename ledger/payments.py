"""Money in through the payment gateway (contract §6): checkouts, the webhook events as stored,
and what each event does — a captured payment credits the paid balance as a top-up whose
`payment_reference` is the payment id (exactly once: the ledger key `topup:<payment id>` and
`gateway_payments.id` are unique), a failed one marks its checkout `failed`.

Every function is one transaction (the caller commits) that locks the account row first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Account
from db.payment_models import Checkout, GatewayEvent, GatewayPayment, PaymentMethod
from domain.contracts import (
    UNMATCHED_DISPOSITIONS,
    CheckoutKind,
    CheckoutStatus,
    PaymentDisposition,
)
from domain.contracts.payments import CheckoutRecord, EventApplied
from domain.ledger_types import BalanceSnapshot
from domain.payments import (
    AUTO_RECHARGE_MAX_FAILURES,
    CAPTURE_EVENTS,
    CURRENCY,
    FAILURE_EVENTS,
    REFUND_EVENTS,
    payment_mismatch,
)
from ledger.accounts import top_up
from ledger.errors import NotFound
from ledger.posting import new_id, require_account, snapshot, utcnow
from ledger.repositories import payments as rows

# --- checkouts -----------------------------------------------------------------------------


def create_checkout(
    session: Session,
    *,
    checkout_id: str,
    account_id: str,
    order_id: str | None,
    amount_paisa: int,
    expires_at: datetime,
    save_method: bool = False,
    kind: CheckoutKind = CheckoutKind.CUSTOMER,
    request_key: str | None = None,
) -> Checkout:
    require_account(session, account_id)
    checkout = Checkout(
        id=checkout_id,
        account_id=account_id,
        order_id=order_id,
        kind=kind,
        request_key=request_key,
        amount_paisa=amount_paisa,
        currency=CURRENCY,
        status=CheckoutStatus.CREATED,
        save_method=save_method,
        charge_attempted=False,
        expires_at=expires_at,
    )
    session.add(checkout)
    session.flush()
    return checkout


def get_checkout(session: Session, checkout_id: str) -> Checkout:
    checkout = rows.get_checkout(session, checkout_id)
    if checkout is None:
        raise NotFound(f"checkout {checkout_id} not found")
    return checkout


def checkout_record(checkout: Checkout) -> CheckoutRecord:
    return CheckoutRecord(
        checkout_id=checkout.id,
        order_id=checkout.order_id or "",
        account_id=checkout.account_id,
        amount_paisa=checkout.amount_paisa,
        currency=checkout.currency,
        status=CheckoutStatus(checkout.status),
        kind=CheckoutKind(checkout.kind),
        expires_at=checkout.expires_at.isoformat(),
        charge_due=(
            checkout.kind == CheckoutKind.AUTO_RECHARGE
            and checkout.status == CheckoutStatus.CREATED
            and not checkout.charge_attempted
        ),
    )


def checkout_for_order(session: Session, order_id: str) -> CheckoutRecord | None:
    checkout = rows.checkout_by_order(session, order_id)
    return checkout_record(checkout) if checkout is not None else None


def _locked_checkout_of_order(session: Session, order_id: str) -> tuple[Checkout, Account] | None:
    """The order's checkout and its account, locked in the one lock order (account first)."""
    peek = rows.checkout_by_order(session, order_id)
    if peek is None:
        return None
    account = require_account(session, peek.account_id)
    checkout = rows.checkout_by_order(session, order_id, lock=True)
    assert checkout is not None
    return checkout, account


def expire_checkout(session: Session, order_id: str) -> tuple[CheckoutRecord | None, bool]:
    """`created` past its time → `expired` (a payment arriving later still credits). Returns the
    checkout and whether an auto-recharge attempt thereby failed."""
    locked = _locked_checkout_of_order(session, order_id)
    if locked is None:
        return None, False
    checkout, account = locked
    if checkout.status != CheckoutStatus.CREATED or checkout.expires_at > utcnow():
        return checkout_record(checkout), False
    _set_status(checkout, CheckoutStatus.EXPIRED, reason="not paid in time")
    return checkout_record(checkout), _count_auto_recharge_failure(account, checkout)


def fail_checkout(session: Session, checkout_id: str, reason: str) -> CheckoutRecord:
    """A checkout whose payment was declined or could not be attempted (an auto-recharge's
    recurring charge); counted as a failed auto-recharge attempt if it was still `created`."""
    account = require_account(session, get_checkout(session, checkout_id).account_id)
    checkout = rows.lock_checkout(session, checkout_id)
    assert checkout is not None
    _fail(account, checkout, reason)
    return checkout_record(checkout)


def mark_charge_attempted(session: Session, order_id: str) -> None:
    checkout = rows.checkout_by_order(session, order_id, lock=True)
    if checkout is not None:
        checkout.charge_attempted = True
        checkout.updated_at = utcnow()


def _set_status(checkout: Checkout, status: CheckoutStatus, *, reason: str | None = None) -> None:
    checkout.status = status
    checkout.updated_at = utcnow()
    if reason is not None:
        checkout.failure_reason = reason[:500]


def _fail(account: Account, checkout: Checkout, reason: str) -> bool:
    if checkout.status != CheckoutStatus.CREATED:
        return False  # paid stays paid; a second failure changes nothing
    _set_status(checkout, CheckoutStatus.FAILED, reason=reason)
    return _count_auto_recharge_failure(account, checkout)


def _count_auto_recharge_failure(account: Account, checkout: Checkout) -> bool:
    """One failed auto-recharge attempt; AUTO_RECHARGE_MAX_FAILURES in a row switch it off."""
    if checkout.kind != CheckoutKind.AUTO_RECHARGE:
        return False
    account.auto_recharge_failures += 1
    if account.auto_recharge_failures >= AUTO_RECHARGE_MAX_FAILURES:
        account.auto_recharge_enabled = False
    return True


# --- webhook events ------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFacts:
    """What an event is about, read from Razorpay's envelope (never raises)."""

    event: str
    payment: Mapping[str, Any]
    payment_id: str | None
    order_id: str | None
    refund_id: str | None
    amount_paisa: int | None
    currency: str | None
    account_id: str | None


def _entity(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    wrapper = payload.get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, Mapping) else None
    return entity if isinstance(entity, Mapping) else {}


def _text(entity: Mapping[str, Any], key: str) -> str | None:
    value = entity.get(key)
    return value[:200] if isinstance(value, str) and value else None


def event_facts(body: Mapping[str, Any]) -> EventFacts:
    event = body.get("event")
    payload = body.get("payload")
    payload = payload if isinstance(payload, Mapping) else {}
    payment = _entity(payload, "payment")
    order = _entity(payload, "order")
    refund = _entity(payload, "refund")
    amount = payment.get("amount") if payment else refund.get("amount")
    notes = payment.get("notes") or order.get("notes")
    account_id = notes.get("account_id") if isinstance(notes, Mapping) else None
    return EventFacts(
        event=str(event)[:64] if isinstance(event, str) else "unknown",
        payment=payment,
        payment_id=_text(payment, "id") or _text(refund, "payment_id"),
        order_id=_text(payment, "order_id") or _text(order, "id"),
        refund_id=_text(refund, "id"),
        amount_paisa=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=_text(payment, "currency") or _text(refund, "currency"),
        account_id=account_id[:64] if isinstance(account_id, str) else None,
    )


def record_event(
    session: Session, *, dedupe_key: str, body: Mapping[str, Any]
) -> tuple[GatewayEvent, EventFacts]:
    """Store a signature-checked event (once per `dedupe_key`; a repeat counts a delivery).
    Events no checkout workflow will take are settled here: a payment without an order is kept
    for support, anything we do not act on is ignored; refund events wait for the refund flow."""
    facts = event_facts(body)
    event, new = rows.record_event(
        session,
        dedupe_key=dedupe_key,
        values={
            "event": facts.event,
            "payment_id": facts.payment_id,
            "order_id": facts.order_id,
            "refund_id": facts.refund_id,
            "account_id": facts.account_id,
            "amount_paisa": facts.amount_paisa,
            "currency": facts.currency,
            "payload": dict(body),
            "signature_verified": True,
        },
    )
    if new:
        if facts.event in REFUND_EVENTS:
            event.disposition = PaymentDisposition.REFUND_EVENT
        elif facts.order_id is None:
            is_payment = facts.event in CAPTURE_EVENTS | FAILURE_EVENTS
            _settle(
                event, PaymentDisposition.NO_ORDER if is_payment else PaymentDisposition.IGNORED
            )
    return event, facts


def _settle(
    event: GatewayEvent, disposition: PaymentDisposition, detail: str | None = None
) -> None:
    event.status = "processed"
    event.disposition = disposition
    event.detail = detail
    event.processed_at = utcnow()


def apply_event(
    session: Session, event_row_id: int
) -> tuple[EventApplied, BalanceSnapshot | None, bool]:
    """Act on one stored event of an order (idempotent: a processed event answers what it did).
    Returns what happened, the balance snapshot when money moved, and whether an auto-recharge
    attempt thereby failed (the caller emails the customer)."""
    peek = session.get(GatewayEvent, event_row_id)
    if peek is None:
        raise NotFound(f"gateway event {event_row_id} not found")
    facts = event_facts(peek.payload)
    locked = _locked_checkout_of_order(session, facts.order_id) if facts.order_id else None
    event = rows.lock_event(session, event_row_id)
    assert event is not None
    if event.status == "processed":
        disposition = PaymentDisposition(event.disposition or PaymentDisposition.IGNORED)
        status = CheckoutStatus(locked[0].status) if locked else None
        return EventApplied(event_row_id, disposition, status), None, False
    if locked is None:
        _settle(event, PaymentDisposition.UNKNOWN_ORDER, f"no checkout has order {facts.order_id}")
        return EventApplied(event_row_id, PaymentDisposition.UNKNOWN_ORDER), None, False
    checkout, account = locked
    event.account_id = checkout.account_id
    balance: BalanceSnapshot | None = None
    failed_attempt = False
    if facts.event in CAPTURE_EVENTS and facts.payment_id:
        disposition, detail, balance = _capture(session, account, checkout, facts)
    elif facts.event in FAILURE_EVENTS and facts.payment_id:
        _record_failed_payment(session, checkout, facts)
        reason = _text(facts.payment, "error_description") or "payment failed"
        was_created = checkout.status == CheckoutStatus.CREATED
        failed_attempt = _fail(account, checkout, reason)
        disposition = (
            PaymentDisposition.CHECKOUT_FAILED if was_created else PaymentDisposition.IGNORED
        )
        detail = reason
    else:
        disposition, detail = PaymentDisposition.IGNORED, None
    _settle(event, disposition, detail)
    applied = EventApplied(event_row_id, disposition, CheckoutStatus(checkout.status))
    return applied, balance, failed_attempt


def _capture(
    session: Session, account: Account, checkout: Checkout, facts: EventFacts
) -> tuple[PaymentDisposition, str | None, BalanceSnapshot | None]:
    payment_id = facts.payment_id or ""
    amount = facts.amount_paisa or 0
    mismatch = payment_mismatch(
        order_amount_paisa=checkout.amount_paisa,
        order_currency=checkout.currency,
        paid_amount_paisa=amount,
        paid_currency=facts.currency or "",
    )
    if mismatch is not None:
        detail = (
            f"paid {amount} {facts.currency} for checkout {checkout.id} of "
            f"{checkout.amount_paisa} {checkout.currency}"
        )
        return mismatch, detail, None
    existing = rows.get_payment(session, payment_id, lock=True)
    if existing is not None and existing.topup_transaction_id is not None:
        return PaymentDisposition.ALREADY_CREDITED, None, None
    transaction, _ = top_up(
        session,
        account_id=account.id,
        amount_paisa=amount,
        payment_reference=payment_id,
        description="Credits bought" if checkout.kind == CheckoutKind.CUSTOMER else "Auto-recharge",
        details={
            "checkout_id": checkout.id,
            "order_id": checkout.order_id,
            "payment_id": payment_id,
        },
    )
    now = utcnow()
    payment = existing or GatewayPayment(id=payment_id, refunded_paisa=0)
    payment.account_id = account.id
    payment.order_id = checkout.order_id or ""
    payment.checkout_id = checkout.id
    payment.amount_paisa = amount
    payment.currency = facts.currency or CURRENCY
    payment.method = _text(facts.payment, "method")
    payment.status = "captured"
    payment.customer_id = _text(facts.payment, "customer_id")
    payment.token_id = _text(facts.payment, "token_id")
    payment.captured_at = now
    payment.topup_transaction_id = transaction.id
    payment.updated_at = now
    session.add(payment)
    if payment.token_id and payment.customer_id:
        _save_method(session, account, payment)
    checkout.payment_id = payment_id
    checkout.paid_at = now
    _set_status(checkout, CheckoutStatus.PAID)
    if checkout.kind == CheckoutKind.AUTO_RECHARGE:
        account.auto_recharge_failures = 0
    session.flush()
    return PaymentDisposition.CREDITED, None, snapshot(account)


def _save_method(session: Session, account: Account, payment: GatewayPayment) -> None:
    """A payment that saved its card: keep the token; it becomes the auto-recharge method."""
    assert payment.token_id is not None and payment.customer_id is not None
    method = rows.method_by_token(session, payment.token_id)
    if method is None:
        method = PaymentMethod(
            id=new_id("pm"),
            account_id=account.id,
            customer_id=payment.customer_id,
            token_id=payment.token_id,
            method=payment.method,
            source_payment_id=payment.id,
        )
        session.add(method)
        session.flush()
    if method.account_id == account.id:
        account.auto_recharge_method_id = method.id


def _record_failed_payment(session: Session, checkout: Checkout, facts: EventFacts) -> None:
    payment_id = facts.payment_id or ""
    if rows.get_payment(session, payment_id) is not None or not facts.amount_paisa:
        return
    session.add(
        GatewayPayment(
            id=payment_id,
            account_id=checkout.account_id,
            order_id=checkout.order_id or "",
            checkout_id=checkout.id,
            amount_paisa=facts.amount_paisa,
            currency=facts.currency or CURRENCY,
            method=_text(facts.payment, "method"),
            status="failed",
            error_reason=_text(facts.payment, "error_reason")
            or _text(facts.payment, "error_description"),
            refunded_paisa=0,
        )
    )
    session.flush()


def unmatched_events(session: Session, before_id: int | None, limit: int) -> list[GatewayEvent]:
    """Payments acknowledged but not credited (unknown order, amount or currency mismatch, no
    order), newest first: for support to resolve by hand."""
    return list(rows.events_with_disposition(session, UNMATCHED_DISPOSITIONS, before_id, limit))


def payment_of_checkout(session: Session, checkout: Checkout) -> GatewayPayment | None:
    return rows.get_payment(session, checkout.payment_id) if checkout.payment_id else None
