"""`RefundWorkflow`'s shapes: its input, its `status` query and result, and its activities'
payloads."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts import EmailOutcome, RefundStatus


@dataclass(frozen=True)
class RefundInput:
    """`{refund_id, account_id, amount_paisa?}`: no amount refunds all the refundable balance."""

    refund_id: str
    account_id: str
    amount_paisa: int | None = None


@dataclass(frozen=True)
class RefundDecisionRequest:
    """The `decision` update (sent with the start by the API): waits until the refund is debited
    (or refused) and returns the `RefundResult`. `amount_paisa` must be the workflow's own: the
    same refund id asked for another amount is rejected (a reused `Idempotency-Key`)."""

    amount_paisa: int | None = None


@dataclass(frozen=True)
class RefundPartRecord:
    """One part of a refund: `kind` `gateway` (a refund against `payment_id`) or `payout` (to the
    customer's bank account); `status` `pending` → `processed` or `failed` (its amount back in
    the balance); `gateway_reference`: the gateway's refund or payout id."""

    part_no: int
    kind: str
    amount_paisa: int
    status: str
    payment_id: str | None = None
    gateway_reference: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundRecord:
    """The refund row as the ledger has it (the ledger activities' result)."""

    refund_id: str
    account_id: str
    amount_paisa: int
    status: RefundStatus
    failure_reason: str | None = None
    gateway_reference: str | None = None
    # Empty in histories recorded before refunds had parts.
    parts: list[RefundPartRecord] = field(default_factory=list)


@dataclass(frozen=True)
class RefundPartRequest:
    """Send one part to the gateway (idempotent per part) or read its state there."""

    refund_id: str
    part_no: int


@dataclass(frozen=True)
class RefundPartEvent:
    """Signal `refund_part_event`: the webhook's `refund.processed` / `refund.failed` for a part
    (`part_no` from the gateway refund's notes); the gateway refund id and its status."""

    part_no: int
    status: str  # processed | failed
    gateway_reference: str | None = None
    reason: str | None = None
    event_row_id: int | None = None


@dataclass(frozen=True)
class RefundPartSettlement:
    """What the workflow heard about a part (a webhook's status), or None: ask the gateway."""

    refund_id: str
    part_no: int
    status: str | None = None
    gateway_reference: str | None = None
    reason: str | None = None
    event_row_id: int | None = None


@dataclass(frozen=True)
class GatewayRequest:
    refund_id: str
    account_id: str
    amount_paisa: int


@dataclass(frozen=True)
class GatewayOutcome:
    succeeded: bool
    reference: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RefundCompletion:
    refund_id: str
    gateway_reference: str | None


@dataclass(frozen=True)
class RefundFailure:
    refund_id: str
    reason: str


@dataclass
class RefundResult:
    """The refund workflow's `status` query and, once settled, its result."""

    id: str
    account_id: str
    amount_paisa: int | None
    status: RefundStatus
    failure_reason: str | None = None
    gateway_reference: str | None = None
    email: EmailOutcome | None = None
    # The stable code (e.g. `refund_exceeds_refundable`) when the refund was refused before any
    # money moved; None once it is debited.
    refusal: str | None = None
    parts: list[RefundPartRecord] = field(default_factory=list)
