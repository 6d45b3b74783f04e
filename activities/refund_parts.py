"""The refund workflow's part activities: send a part to the gateway (idempotent per part),
settle it (a webhook's word, or the gateway asked), finish the refund once every part is
settled. Each ledger step is one transaction (`ledger.refund_parts`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.alerts import AlertPublisher
from adapters.payments.refund_rails import PartOrder, PartOutcome, RailUnavailable, RefundRails
from db.models import Refund
from db.payment_models import RefundPart
from db.session import run_in_transaction
from domain.contracts import (
    REFUND_FINISH_ACTIVITY,
    REFUND_PART_SEND_ACTIVITY,
    REFUND_PART_SETTLE_ACTIVITY,
    RefundStatus,
)
from domain.contracts.refunds import (
    RefundPartRecord,
    RefundPartRequest,
    RefundPartSettlement,
    RefundRecord,
)
from domain.refund_parts import RefundPartKind, RefundPartStatus
from ledger import accounts as ledger_accounts
from ledger import refund_parts as ledger_parts
from ledger import refunds as ledger_refunds
from ledger.errors import BillingError


def part_record(part: RefundPart) -> RefundPartRecord:
    return RefundPartRecord(
        part_no=part.part_no,
        kind=part.kind,
        amount_paisa=part.amount_paisa,
        status=part.status,
        payment_id=part.payment_id,
        gateway_reference=part.gateway_reference,
        failure_reason=part.failure_reason,
    )


def refund_record(refund: Refund, parts: list[RefundPart]) -> RefundRecord:
    return RefundRecord(
        refund_id=refund.id,
        account_id=refund.account_id,
        amount_paisa=refund.amount_paisa,
        status=RefundStatus(refund.status),
        failure_reason=refund.failure_reason,
        gateway_reference=refund.gateway_reference,
        parts=[part_record(p) for p in parts],
    )


class RefundPartActivities:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: Client,
        rails: RefundRails,
        *,
        task_queue: str,
        payout_fund_account_id: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.rails = rails
        # Used for payout parts of accounts without their own fund account (the dev stand-in's
        # placeholder); production leaves it unset and support records each customer's.
        self.payout_fund_account_id = payout_fund_account_id
        self.alerts = AlertPublisher(session_factory, client, task_queue=task_queue)

    def _order(self, refund_id: str, part_no: int) -> tuple[PartOrder, RefundPartRecord]:
        with self.session_factory() as session:
            refund = ledger_refunds.get_refund(session, refund_id)
            [part] = [p for p in ledger_parts.parts(session, refund_id) if p.part_no == part_no]
            account = ledger_accounts.get_account(session, refund.account_id)
            fund_account = account.payout_fund_account_id or self.payout_fund_account_id
            order = PartOrder(
                refund_id=refund_id,
                account_id=refund.account_id,
                part_no=part_no,
                kind=RefundPartKind(part.kind),
                amount_paisa=part.amount_paisa,
                idempotency_key=part.idempotency_key,
                payment_id=part.payment_id,
                fund_account_id=fund_account,
            )
            record = part_record(part)
            session.rollback()
            return order, record

    async def _settle(
        self,
        refund_id: str,
        part_no: int,
        outcome: PartOutcome,
        event_row_id: int | None = None,
    ) -> RefundPartRecord:
        def work(session: Session) -> tuple[RefundPartRecord, Any]:
            part, snap = ledger_parts.settle_part(
                session,
                refund_id=refund_id,
                part_no=part_no,
                status=outcome.status,
                reference=outcome.reference,
                reason=outcome.reason,
            )
            if event_row_id is not None:
                ledger_parts.mark_event_settled(session, event_row_id, refund_id, part_no)
            return part_record(part), snap

        record, snap = await asyncio.to_thread(run_in_transaction, self.session_factory, work)
        await self.alerts.after_commit(snap)
        return record

    @activity.defn(name=REFUND_PART_SEND_ACTIVITY)
    async def refund_part_send(self, request: RefundPartRequest) -> RefundPartRecord:
        order, record = await asyncio.to_thread(self._order, request.refund_id, request.part_no)
        if record.status != RefundPartStatus.PENDING or record.gateway_reference:
            return record  # already sent (or settled by a webhook meanwhile)
        try:
            outcome = await self.rails.send(order)
        except RailUnavailable as exc:
            raise ApplicationError(str(exc), type="GatewayUnavailable") from exc
        return await self._settle(request.refund_id, request.part_no, outcome)

    @activity.defn(name=REFUND_PART_SETTLE_ACTIVITY)
    async def refund_part_settle(self, request: RefundPartSettlement) -> RefundPartRecord:
        order, record = await asyncio.to_thread(self._order, request.refund_id, request.part_no)
        if record.status != RefundPartStatus.PENDING:
            if request.event_row_id is not None:  # a late or repeated webhook: nothing to do
                return await self._settle(
                    request.refund_id,
                    request.part_no,
                    PartOutcome(RefundPartStatus(record.status)),
                    request.event_row_id,
                )
            return record
        if request.status is not None:  # a signed webhook said so
            outcome = PartOutcome(
                RefundPartStatus(request.status), request.gateway_reference, request.reason
            )
        else:
            try:
                outcome = await self.rails.check(order, record.gateway_reference)
            except RailUnavailable as exc:
                raise ApplicationError(str(exc), type="GatewayUnavailable") from exc
        return await self._settle(request.refund_id, request.part_no, outcome, request.event_row_id)

    @activity.defn(name=REFUND_FINISH_ACTIVITY)
    async def refund_finish(self, refund_id: str) -> RefundRecord:
        def work(session: Session) -> tuple[RefundRecord, Any]:
            refund, snap = ledger_parts.finish_refund(session, refund_id)
            return refund_record(refund, ledger_parts.parts(session, refund_id)), snap

        try:
            record, snap = await asyncio.to_thread(run_in_transaction, self.session_factory, work)
        except BillingError as exc:
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc
        await self.alerts.after_commit(snap)
        return record

    def activities(self) -> list[Callable[..., Any]]:
        return [self.refund_part_send, self.refund_part_settle, self.refund_finish]
