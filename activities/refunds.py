"""Activities of `RefundWorkflow`: ledger steps, the payment gateway, the customer email."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.accounts import load_recipient, send_rendered_once
from activities.alerts import AlertPublisher
from activities.refund_parts import refund_record
from adapters.email import templates
from adapters.email.sender import EmailSender
from adapters.payments.gateway import GatewayUnavailable, PaymentGateway
from db.models import Refund
from db.session import run_in_transaction
from domain.contracts import (
    REFUND_COMPLETE_ACTIVITY,
    REFUND_EMAIL_ACTIVITY,
    REFUND_FAIL_ACTIVITY,
    REFUND_GATEWAY_ACTIVITY,
    REFUND_START_ACTIVITY,
    EmailOutcome,
    RefundStatus,
)
from domain.contracts.refunds import (
    GatewayOutcome,
    GatewayRequest,
    RefundCompletion,
    RefundFailure,
    RefundInput,
    RefundRecord,
)
from domain.ledger_types import BalanceSnapshot
from ledger import balances
from ledger import refund_parts as ledger_parts
from ledger import refunds as ledger_refunds
from ledger.errors import BillingError

T = TypeVar("T")


class RefundActivities:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: Client,
        gateway: PaymentGateway,
        email_sender: EmailSender,
        *,
        task_queue: str,
        email_from: str = "billing@osmtalk.example",
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.gateway = gateway
        self.email_sender = email_sender
        self.task_queue = task_queue
        self.email_from = email_from
        self.alerts = AlertPublisher(session_factory, client, task_queue=task_queue)

    async def _ledger(
        self, work: Callable[[Session], tuple[Refund, BalanceSnapshot]]
    ) -> RefundRecord:
        def with_parts(session: Session) -> tuple[RefundRecord, BalanceSnapshot]:
            refund, snap = work(session)
            return refund_record(refund, ledger_parts.parts(session, refund.id)), snap

        def run() -> tuple[RefundRecord, BalanceSnapshot]:
            return run_in_transaction(self.session_factory, with_parts)

        try:
            record, snap = await asyncio.to_thread(run)
        except BillingError as exc:
            # Business refusals never change state; retrying cannot help.
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc
        await self.alerts.after_commit(snap)  # a refund can take the balance below the threshold
        return record

    @activity.defn(name=REFUND_START_ACTIVITY)
    async def refund_start(self, request: RefundInput) -> RefundRecord:
        return await self._ledger(
            lambda s: ledger_refunds.start_refund(
                s,
                refund_id=request.refund_id,
                account_id=request.account_id,
                amount_paisa=request.amount_paisa,
            )
        )

    @activity.defn(name=REFUND_GATEWAY_ACTIVITY)
    async def refund_gateway(self, request: GatewayRequest) -> GatewayOutcome:
        try:
            result = await self.gateway.refund(
                refund_id=request.refund_id,
                account_id=request.account_id,
                amount_paisa=request.amount_paisa,
            )
        except GatewayUnavailable as exc:
            raise ApplicationError(str(exc), type="GatewayUnavailable") from exc
        return GatewayOutcome(result.succeeded, result.reference, result.reason)

    @activity.defn(name=REFUND_COMPLETE_ACTIVITY)
    async def refund_complete(self, request: RefundCompletion) -> RefundRecord:
        return await self._ledger(
            lambda s: ledger_refunds.complete_refund(
                s, refund_id=request.refund_id, gateway_reference=request.gateway_reference
            )
        )

    @activity.defn(name=REFUND_FAIL_ACTIVITY)
    async def refund_fail(self, request: RefundFailure) -> RefundRecord:
        return await self._ledger(
            lambda s: ledger_refunds.fail_refund(
                s, refund_id=request.refund_id, reason=request.reason
            )
        )

    @activity.defn(name=REFUND_EMAIL_ACTIVITY)
    async def refund_email(self, refund_id: str) -> EmailOutcome:
        def load() -> tuple[RefundRecord, int]:
            with self.session_factory() as session:
                refund = ledger_refunds.get_refund(session, refund_id)
                summary = balances.balance_summary(session, refund.account_id)
                session.commit()
                return refund_record(refund, []), summary.balance.available_paisa

        record, available = await asyncio.to_thread(load)
        if record.status == RefundStatus.PENDING:
            raise ApplicationError(
                f"refund {refund_id} is still {record.status}", non_retryable=True
            )
        recipient = await asyncio.to_thread(load_recipient, self.session_factory, record.account_id)
        if recipient is None:
            return EmailOutcome.NO_ACCOUNT
        if record.status == RefundStatus.COMPLETED:
            rendered = templates.refund_completed(
                account_name=recipient.name,
                amount_paisa=record.amount_paisa,
                refund_id=refund_id,
                balance_paisa=available,
            )
        else:
            rendered = templates.refund_failed(
                account_name=recipient.name,
                amount_paisa=record.amount_paisa,
                refund_id=refund_id,
                balance_paisa=available,
                reason=record.failure_reason or "refused by the payment provider",
            )
        return await send_rendered_once(
            self.session_factory,
            self.email_sender,
            rendered,
            to=recipient.email,
            from_email=self.email_from,
            dedupe_key=f"refund-{record.status}:{refund_id}",
            account_id=record.account_id,
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.refund_start,
            self.refund_gateway,
            self.refund_complete,
            self.refund_fail,
            self.refund_email,
        ]
