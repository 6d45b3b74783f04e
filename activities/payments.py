"""Activities of money in: `CheckoutWorkflow`'s (load, apply a stored webhook event, expire,
the recurring charge of an auto-recharge, its failure email) and `AutoRechargeWorkflow`'s
`auto_recharge_start` (the gateway order of a crossing the ledger recorded).

The gateway is the Razorpay adapter (synchronous: called on a thread). Its retryable errors
propagate so Temporal retries with the same idempotency (one order per charge); a rejection is
final and fails the checkout. Without keys (`WorkerDeps.razorpay` None) webhook events are still
applied (they need no gateway call); charges fail with a clear reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import load_recipient, send_rendered_once
from activities.deps import WorkerDeps
from adapters.checkout_events import start_checkout_workflow
from adapters.email.payment_templates import auto_recharge_failed
from adapters.payments.razorpay_types import RazorpayRejectedError, RazorpayRetryableError
from db.session import run_in_transaction
from domain.contracts import (
    AUTO_RECHARGE_ACTIVITY,
    AUTO_RECHARGE_EMAIL_ACTIVITY,
    CHECKOUT_APPLY_EVENT_ACTIVITY,
    CHECKOUT_CHARGE_ACTIVITY,
    CHECKOUT_EXPIRE_ACTIVITY,
    CHECKOUT_LOAD_ACTIVITY,
    CheckoutStatus,
    EmailOutcome,
)
from domain.contracts.payments import (
    AutoRechargeStarted,
    CheckoutRecord,
    EventApplied,
    GatewayEventRef,
    RecurringChargeResult,
)
from domain.payments import AUTO_RECHARGE_MAX_FAILURES
from ledger import accounts, auto_recharge, payments
from ledger.errors import BillingError
from ledger.posting import utcnow

T = TypeVar("T")


class PaymentActivities:
    def __init__(self, deps: WorkerDeps) -> None:
        self.deps = deps

    async def _db(self, work: Callable[[Any], T]) -> T:
        try:
            return await asyncio.to_thread(run_in_transaction, self.deps.session_factory, work)
        except BillingError as exc:
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc

    def _gateway_error(self, exc: RazorpayRetryableError) -> ApplicationError:
        return ApplicationError(str(exc), type="GatewayUnavailable")

    @activity.defn(name=CHECKOUT_LOAD_ACTIVITY)
    async def checkout_load(self, order_id: str) -> CheckoutRecord | None:
        return await self._db(lambda s: payments.checkout_for_order(s, order_id))

    @activity.defn(name=CHECKOUT_APPLY_EVENT_ACTIVITY)
    async def checkout_apply_event(self, event: GatewayEventRef) -> EventApplied:
        # A credit never crosses a threshold downwards: nothing to hand over after it.
        applied, _, _ = await self._db(lambda s: payments.apply_event(s, event.event_row_id))
        return applied

    @activity.defn(name=CHECKOUT_EXPIRE_ACTIVITY)
    async def checkout_expire(self, order_id: str) -> CheckoutRecord | None:
        record, _ = await self._db(lambda s: payments.expire_checkout(s, order_id))
        return record

    @activity.defn(name=CHECKOUT_CHARGE_ACTIVITY)
    async def checkout_charge_recurring(self, order_id: str) -> RecurringChargeResult:
        terms = await self._db(lambda s: auto_recharge.charge_terms(s, order_id))
        if terms is None:
            raise ApplicationError(f"order {order_id} has nothing to charge", non_retryable=True)
        if terms.status != CheckoutStatus.CREATED:
            return RecurringChargeResult(charged=False, checkout_status=terms.status)
        gateway = self.deps.razorpay
        if gateway is None:
            return await self._declined(terms.checkout_id, "payments are not configured")
        try:
            payment = await asyncio.to_thread(
                gateway.charge_recurring,
                order_id=order_id,
                amount_paisa=terms.amount_paisa,
                customer_id=terms.customer_id,
                token_id=terms.token_id,
                email=terms.email,
                description="osmTalk auto-recharge",
                notes={"checkout_id": terms.checkout_id, "account_id": terms.account_id},
            )
        except RazorpayRetryableError as exc:
            raise self._gateway_error(exc) from exc
        except RazorpayRejectedError as exc:
            return await self._declined(terms.checkout_id, exc.reason or exc.description)
        await self._db(lambda s: payments.mark_charge_attempted(s, order_id))
        if payment.status == "failed":
            reason = payment.error_description or payment.error_reason or "declined"
            return await self._declined(terms.checkout_id, reason, payment.id)
        # Credited when the `payment.captured` webhook arrives (the one crediting path).
        return RecurringChargeResult(
            charged=True, checkout_status=CheckoutStatus.CREATED, payment_id=payment.id
        )

    async def _declined(
        self, checkout_id: str, reason: str, payment_id: str | None = None
    ) -> RecurringChargeResult:
        record = await self._db(lambda s: payments.fail_checkout(s, checkout_id, reason))
        return RecurringChargeResult(
            charged=False,
            checkout_status=record.status,
            payment_id=payment_id,
            failure_reason=reason,
        )

    @activity.defn(name=AUTO_RECHARGE_ACTIVITY)
    async def auto_recharge_start(self, checkout_id: str) -> AutoRechargeStarted:
        """The gateway order of a recorded auto-recharge, then its `CheckoutWorkflow`. While
        the gateway is down this is retried, until the checkout's window ends: then the attempt
        has failed."""
        checkout, customer_id = await self._db(lambda s: auto_recharge.order_terms(s, checkout_id))
        order_id = checkout.order_id
        if checkout.status != CheckoutStatus.CREATED and order_id is None:
            return AutoRechargeStarted(False, checkout_id, reason=f"already {checkout.status}")
        if order_id is None:
            gateway = self.deps.razorpay
            if gateway is None:
                return await self._recharge_failed(checkout_id, "payments are not configured")
            if checkout.expires_at <= utcnow():
                return await self._recharge_failed(checkout_id, "the payment gateway was down")
            try:
                order = await asyncio.to_thread(
                    gateway.create_order,
                    amount_paisa=checkout.amount_paisa,
                    receipt=checkout.id,
                    account_id=checkout.account_id,
                    notes={"checkout_id": checkout.id, "kind": "auto_recharge"},
                    customer_id=customer_id,
                )
            except RazorpayRetryableError as exc:
                raise self._gateway_error(exc) from exc
            except RazorpayRejectedError as exc:
                return await self._recharge_failed(checkout_id, exc.reason or exc.description)
            stored = await self._db(lambda s: auto_recharge.set_order(s, checkout_id, order.id))
            order_id = stored.order_id
        assert order_id is not None
        await start_checkout_workflow(self.deps.client, order_id, task_queue=self.deps.task_queue)
        return AutoRechargeStarted(True, checkout_id, order_id)

    async def _recharge_failed(self, checkout_id: str, reason: str) -> AutoRechargeStarted:
        await self._db(lambda s: payments.fail_checkout(s, checkout_id, reason))
        return AutoRechargeStarted(False, checkout_id, failed=True, reason=reason)

    @activity.defn(name=AUTO_RECHARGE_EMAIL_ACTIVITY)
    async def auto_recharge_failed_email(self, checkout_id: str) -> EmailOutcome:
        def load(session: Any) -> tuple[str, int, str, int, bool]:
            checkout = payments.get_checkout(session, checkout_id)
            account = accounts.get_account(session, checkout.account_id)
            return (
                account.id,
                checkout.amount_paisa,
                checkout.failure_reason or checkout.status,
                account.auto_recharge_failures,
                not account.auto_recharge_enabled,
            )

        account_id, amount, reason, failures, off = await self._db(load)
        recipient = await asyncio.to_thread(load_recipient, self.deps.session_factory, account_id)
        if recipient is None:
            return EmailOutcome.NO_ACCOUNT
        rendered = auto_recharge_failed(
            account_name=recipient.name,
            amount_paisa=amount,
            reason=reason,
            failures=failures,
            switched_off=off and failures >= AUTO_RECHARGE_MAX_FAILURES,
            billing_url=f"{self.deps.dashboard_url.rstrip('/')}/billing",
        )
        return await send_rendered_once(
            self.deps.session_factory,
            self.deps.email_sender,
            rendered,
            to=recipient.email,
            from_email=self.deps.email_from,
            dedupe_key=f"auto-recharge-failed:{checkout_id}",
            account_id=account_id,
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.checkout_load,
            self.checkout_apply_event,
            self.checkout_expire,
            self.checkout_charge_recurring,
            self.auto_recharge_start,
            self.auto_recharge_failed_email,
        ]
