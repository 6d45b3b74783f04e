"""`CheckoutWorkflow` (`checkout_workflow_id(order_id)`): one per gateway order. The API starts
it when it creates a checkout's order; every webhook event of the order, stored first in
`gateway_events`, reaches it by signal-with-start (`gateway_event`), so a late or repeated event
for a finished order starts a short run that settles it.

1. `checkout_load`: the checkout of the order (None: an order we never made; its events are
   then recorded as unknown, for support).
2. An auto-recharge checkout not charged yet: `checkout_charge_recurring` (the saved token,
   idempotent per order at the gateway); a decline fails the checkout.
3. Each event, in arrival order, once: `checkout_apply_event` (a captured payment credits once
   per payment id; a failed one marks the checkout `failed`).
4. While the checkout is `created`: wait for events until `expires_at`, then `checkout_expire`.
A failed auto-recharge attempt (declined, failed or expired) emails the customer
(`auto_recharge_failed_email`, at most once per checkout). Names and shapes: domain.contracts.

`AutoRechargeWorkflow` (below) makes the order of an auto-recharge crossing, then hands it here.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.retry_policies import GATEWAY_RETRY, LEDGER_RETRY

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        AUTO_RECHARGE_ACTIVITY,
        AUTO_RECHARGE_EMAIL_ACTIVITY,
        AUTO_RECHARGE_WORKFLOW,
        CHECKOUT_APPLY_EVENT_ACTIVITY,
        CHECKOUT_CHARGE_ACTIVITY,
        CHECKOUT_EXPIRE_ACTIVITY,
        CHECKOUT_LOAD_ACTIVITY,
        CHECKOUT_WORKFLOW,
        GATEWAY_EVENT_SIGNAL,
        STATUS_QUERY,
        CheckoutKind,
        CheckoutStatus,
        EmailOutcome,
        PaymentDisposition,
    )
    from domain.contracts.payments import (
        AutoRechargeStarted,
        CheckoutInput,
        CheckoutProgress,
        CheckoutRecord,
        EventApplied,
        GatewayEventRef,
        RecurringChargeResult,
    )


@workflow.defn(name=CHECKOUT_WORKFLOW)
class CheckoutWorkflow:
    @workflow.init
    def __init__(self, input: CheckoutInput) -> None:
        self._progress = CheckoutProgress(order_id=input.order_id)
        self._pending: list[GatewayEventRef] = []
        self._seen: set[int] = set()
        self._record: CheckoutRecord | None = None

    @workflow.signal(name=GATEWAY_EVENT_SIGNAL)
    def gateway_event(self, event: GatewayEventRef) -> None:
        if event.event_row_id in self._seen:
            return  # a redelivery signalled again: the first one is queued or applied
        self._seen.add(event.event_row_id)
        self._pending.append(event)

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CheckoutProgress:
        return self._progress

    def _apply_record(self, record: CheckoutRecord | None) -> None:
        if record is not None:
            self._record = record
            self._progress.checkout_id = record.checkout_id
            self._progress.status = record.status

    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutProgress:
        self._apply_record(await self._ledger_record(CHECKOUT_LOAD_ACTIVITY, input.order_id))
        record = self._record
        if record is not None and record.charge_due:
            await self._charge(record)
        while True:
            await self._drain()
            record = self._record
            if record is None or self._progress.status != CheckoutStatus.CREATED:
                break
            remaining = datetime.fromisoformat(record.expires_at) - workflow.now()
            if remaining <= timedelta(0):
                await self._expire(record)
                continue
            with contextlib.suppress(TimeoutError):  # due: expire it
                await workflow.wait_condition(lambda: bool(self._pending), timeout=remaining)
        await workflow.wait_condition(workflow.all_handlers_finished)
        while self._pending:  # signals that came in while the last ones were applied
            await self._drain()
        return self._progress

    async def _ledger_record(self, activity: str, order_id: str) -> CheckoutRecord | None:
        record: CheckoutRecord | None = await workflow.execute_activity(
            activity,
            order_id,
            result_type=CheckoutRecord | None,  # type: ignore[arg-type]
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LEDGER_RETRY,
        )
        return record

    async def _drain(self) -> None:
        while self._pending:
            event = self._pending.pop(0)
            applied = await workflow.execute_activity(
                CHECKOUT_APPLY_EVENT_ACTIVITY,
                event,
                result_type=EventApplied,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LEDGER_RETRY,
            )
            self._progress.events_applied += 1
            self._progress.dispositions.append(applied.disposition)
            if applied.checkout_status is not None:
                self._progress.status = applied.checkout_status
            if applied.disposition == PaymentDisposition.CHECKOUT_FAILED:
                await self._email_failed_recharge()

    async def _charge(self, record: CheckoutRecord) -> None:
        window = datetime.fromisoformat(record.expires_at) - workflow.now()
        try:
            result: RecurringChargeResult = await workflow.execute_activity(
                CHECKOUT_CHARGE_ACTIVITY,
                record.order_id,
                result_type=RecurringChargeResult,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=max(window, timedelta(minutes=1)),
                retry_policy=GATEWAY_RETRY,
            )
        except ActivityError as exc:
            # The gateway stayed down: the checkout expires unpaid (a failed attempt).
            workflow.logger.warning("recurring charge of %s not made: %s", record.order_id, exc)
            return
        self._progress.status = result.checkout_status
        if result.checkout_status == CheckoutStatus.FAILED:
            await self._email_failed_recharge()

    async def _expire(self, record: CheckoutRecord) -> None:
        expired = await self._ledger_record(CHECKOUT_EXPIRE_ACTIVITY, record.order_id)
        if expired is None:
            self._record = None  # the row is gone: nothing left to wait for
            return
        if expired.status == CheckoutStatus.CREATED:
            # Not yet due by the database's clock: look again in a moment.
            await asyncio.sleep(1)
            return
        self._apply_record(expired)
        if expired.status == CheckoutStatus.EXPIRED:
            await self._email_failed_recharge()

    async def _email_failed_recharge(self) -> None:
        record = self._record
        if record is not None and record.kind == CheckoutKind.AUTO_RECHARGE:
            await email_failed_recharge(record.checkout_id)


async def email_failed_recharge(checkout_id: str) -> None:
    """The customer hears of each failed auto-recharge attempt (at most once per checkout)."""
    try:
        await workflow.execute_activity(
            AUTO_RECHARGE_EMAIL_ACTIVITY,
            checkout_id,
            result_type=EmailOutcome,
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(hours=6),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=5),
            ),
        )
    except ActivityError as exc:
        workflow.logger.warning("auto-recharge email for %s not sent: %s", checkout_id, exc)


@workflow.defn(name=AUTO_RECHARGE_WORKFLOW)
class AutoRechargeWorkflow:
    """`auto_recharge_workflow_id(checkout_id)`: one per auto-recharge crossing the ledger
    recorded (ledger.recharge_crossings). `auto_recharge_start` makes its gateway order (retried
    while the gateway is down, until the checkout's window ends) and starts the order's
    `CheckoutWorkflow`, which charges the saved card; an attempt that failed here is emailed."""

    @workflow.run
    async def run(self, checkout_id: str) -> AutoRechargeStarted:
        result: AutoRechargeStarted = await workflow.execute_activity(
            AUTO_RECHARGE_ACTIVITY,
            checkout_id,
            result_type=AutoRechargeStarted,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=GATEWAY_RETRY,
        )
        if result.failed:
            await email_failed_recharge(checkout_id)
        return result
