"""Where a refund part's money goes: `RefundRails`, what the refund workflow's part activities
call. `RazorpayRefundRails` refunds a captured payment through Razorpay's refund API and pays
the rest out through RazorpayX Payouts; `SandboxRefundRails` answers from the in-process sandbox
(tests whose worker has no Razorpay, and a worker started without RAZORPAY keys).

Each part carries its own idempotency key (`domain.refund_parts.part_idempotency_key`), sent as
`X-Refund-Idempotency` / `X-Payout-Idempotency`: a retried send never pays twice. Outcomes:
`PartOutcome` `pending` (settled later by a webhook or `check`), `processed`, or `failed` for
good (the gateway refused: the part's money goes back to the balance). `RailUnavailable`: a 5xx,
429 or timeout; the activity retries with the same key."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from adapters.payments.gateway import GatewayUnavailable, SandboxPaymentGateway
from adapters.payments.razorpay import RazorpayGateway
from adapters.payments.razorpay_payouts import RazorpayPayouts
from adapters.payments.razorpay_types import (
    RazorpayError,
    RazorpayPayout,
    RazorpayRefund,
    RazorpayRetryableError,
)
from domain.refund_parts import RefundPartKind, RefundPartStatus

log = logging.getLogger(__name__)
_PAYOUT_FAILED = frozenset({"failed", "reversed", "cancelled", "rejected"})


@dataclass(frozen=True)
class PartOrder:
    """One part as the gateway gets it."""

    refund_id: str
    account_id: str
    part_no: int
    kind: RefundPartKind
    amount_paisa: int
    idempotency_key: str
    payment_id: str | None = None  # gateway parts
    fund_account_id: str | None = None  # payout parts: the customer's bank account at RazorpayX

    @property
    def notes(self) -> dict[str, str]:
        """On the gateway's refund: the webhook routes `refund.*` back to us by these."""
        return {
            "refund_id": self.refund_id,
            "part_no": str(self.part_no),
            "account_id": self.account_id,
        }


@dataclass(frozen=True)
class PartOutcome:
    status: RefundPartStatus
    reference: str | None = None
    reason: str | None = None


class RailUnavailable(Exception):
    """Transient: try the same part again with the same key."""


class RefundRails(Protocol):
    async def send(self, order: PartOrder) -> PartOutcome:
        """Make the part at the gateway (or find the one made with its key)."""
        ...

    async def check(self, order: PartOrder, reference: str | None) -> PartOutcome:
        """The part's state at the gateway now."""
        ...


def _refund_outcome(refund: RazorpayRefund) -> PartOutcome:
    status = {
        "processed": RefundPartStatus.PROCESSED,
        "failed": RefundPartStatus.FAILED,
    }.get(refund.status, RefundPartStatus.PENDING)
    reason = "the card issuer refused the refund" if status == RefundPartStatus.FAILED else None
    return PartOutcome(status, refund.id, reason)


def _payout_outcome(payout: RazorpayPayout) -> PartOutcome:
    if payout.status == "processed":
        return PartOutcome(RefundPartStatus.PROCESSED, payout.id)
    if payout.status in _PAYOUT_FAILED:
        reason = payout.failure_reason or f"the payout was {payout.status}"
        return PartOutcome(RefundPartStatus.FAILED, payout.id, reason)
    return PartOutcome(RefundPartStatus.PENDING, payout.id)


class RazorpayRefundRails:
    """Razorpay refunds for gateway parts; RazorpayX payouts (when configured) for the rest."""

    def __init__(self, gateway: RazorpayGateway, payouts: RazorpayPayouts | None) -> None:
        self.gateway = gateway
        self.payouts = payouts

    async def send(self, order: PartOrder) -> PartOutcome:
        try:
            if order.kind == RefundPartKind.GATEWAY:
                assert order.payment_id is not None
                payment_id = order.payment_id
                refund = await asyncio.to_thread(
                    lambda: self.gateway.refund_payment(
                        payment_id=payment_id,
                        amount_paisa=order.amount_paisa,
                        idempotency_key=order.idempotency_key,
                        notes=order.notes,
                    )
                )
                return _refund_outcome(refund)
            return await self._payout(order)
        except RazorpayRetryableError as exc:
            raise RailUnavailable(str(exc)) from exc
        except RazorpayError as exc:  # a refusal: final for this part
            log.warning("refund %s part %s refused: %s", order.refund_id, order.part_no, exc)
            return PartOutcome(RefundPartStatus.FAILED, None, f"refused by the gateway: {exc}")

    async def _payout(self, order: PartOrder) -> PartOutcome:
        if self.payouts is None:
            return PartOutcome(
                RefundPartStatus.FAILED,
                None,
                "payouts are not configured (RAZORPAYX_ACCOUNT_NUMBER): refund by bank transfer",
            )
        if not order.fund_account_id:
            return PartOutcome(
                RefundPartStatus.FAILED,
                None,
                "no bank account on file for payouts: support must add the customer's "
                "RazorpayX fund account",
            )
        payouts, fund_account_id = self.payouts, order.fund_account_id
        payout = await asyncio.to_thread(
            lambda: payouts.create_payout(
                fund_account_id=fund_account_id,
                amount_paisa=order.amount_paisa,
                idempotency_key=order.idempotency_key,
                reference_id=order.idempotency_key,
                narration="osmTalk refund",
                notes=order.notes,
            )
        )
        return _payout_outcome(payout)

    async def check(self, order: PartOrder, reference: str | None) -> PartOutcome:
        if reference is None:
            return await self.send(order)  # never answered: the same key finds it, or makes it
        try:
            if order.kind == RefundPartKind.GATEWAY:
                refund = await asyncio.to_thread(self.gateway.fetch_refund, reference)
                return _refund_outcome(refund)
            assert self.payouts is not None
            payout = await asyncio.to_thread(self.payouts.fetch_payout, reference)
            return _payout_outcome(payout)
        except RazorpayRetryableError as exc:
            raise RailUnavailable(str(exc)) from exc


class SandboxRefundRails:
    """Every part through the in-process sandbox gateway, keyed by refund id (`-<n>` after the
    first part), settled at once."""

    def __init__(self, sandbox: SandboxPaymentGateway) -> None:
        self.sandbox = sandbox

    async def send(self, order: PartOrder) -> PartOutcome:
        key = order.refund_id if order.part_no == 1 else f"{order.refund_id}-{order.part_no}"
        try:
            result = await self.sandbox.refund(
                refund_id=key, account_id=order.account_id, amount_paisa=order.amount_paisa
            )
        except GatewayUnavailable as exc:
            raise RailUnavailable(str(exc)) from exc
        if result.succeeded:
            return PartOutcome(RefundPartStatus.PROCESSED, result.reference)
        return PartOutcome(RefundPartStatus.FAILED, None, result.reason)

    async def check(self, order: PartOrder, reference: str | None) -> PartOutcome:
        return await self.send(order)
