"""`CheckoutWorkflow`'s shapes (one workflow per gateway order, `checkout_workflow_id`): its
input, the `gateway_event` signal, the `status` query, and its activities' payloads; and what
`AutoRechargeWorkflow` (one per auto-recharge checkout) gets back from its activity."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.contracts import CheckoutKind, CheckoutStatus, PaymentDisposition


@dataclass(frozen=True)
class CheckoutInput:
    """Started by the API when it creates the order, or by a webhook's signal-with-start."""

    order_id: str


@dataclass(frozen=True)
class GatewayEventRef:
    """The `gateway_event` signal: a webhook event already stored in `gateway_events`."""

    event_row_id: int
    event: str
    payment_id: str | None = None


@dataclass(frozen=True)
class CheckoutRecord:
    """The checkout row as the ledger has it."""

    checkout_id: str
    order_id: str
    account_id: str
    amount_paisa: int
    currency: str
    status: CheckoutStatus
    kind: CheckoutKind
    expires_at: str  # ISO time
    charge_due: bool = False  # an auto-recharge order whose recurring charge is not yet made


@dataclass(frozen=True)
class EventApplied:
    event_row_id: int
    disposition: PaymentDisposition
    checkout_status: CheckoutStatus | None = None


@dataclass(frozen=True)
class RecurringChargeResult:
    charged: bool
    checkout_status: CheckoutStatus
    payment_id: str | None = None
    failure_reason: str | None = None


@dataclass
class CheckoutProgress:
    """The checkout workflow's `status` query."""

    order_id: str
    checkout_id: str | None = None
    status: CheckoutStatus | None = None
    events_applied: int = 0
    dispositions: list[PaymentDisposition] = field(default_factory=list)


@dataclass(frozen=True)
class AutoRechargeStarted:
    """`started`: its order exists and `CheckoutWorkflow` charges it; else `failed` says whether
    the attempt failed (counted, the customer is emailed) or was already settled."""

    started: bool
    checkout_id: str
    order_id: str | None = None
    failed: bool = False
    reason: str | None = None
