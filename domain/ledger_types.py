"""Plain dataclasses crossing the workflow/activity boundary. JSON friendly: ints and strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.balance_rules import below_alert_threshold, refundable_paisa, spendable_paisa
from domain.rating import Breakdown, RateCard, UsageLine

REASON_INSUFFICIENT_BALANCE = "insufficient_balance"
REASON_ACCOUNT_NOT_FOUND = "account_not_found"
# Billing could not decide (database or worker down): HTTP 503, never 402 (contract §3).
REASON_BILLING_UNAVAILABLE = "billing_unavailable"


@dataclass(frozen=True)
class BalanceSnapshot:
    account_id: str
    paid_paisa: int
    promo_paisa: int
    reserved_paisa: int
    min_balance_paisa: int
    alert_threshold_paisa: int
    version: int
    # Set while auto-recharge is on: AccountWorkflow charges once per crossing below it.
    auto_recharge_threshold_paisa: int | None = None

    @property
    def available_paisa(self) -> int:
        return self.paid_paisa + self.promo_paisa

    @property
    def refundable_paisa(self) -> int:
        return refundable_paisa(
            paid_paisa=self.paid_paisa,
            promo_paisa=self.promo_paisa,
            reserved_paisa=self.reserved_paisa,
        )

    @property
    def below_auto_recharge_threshold(self) -> bool:
        """Auto-recharge is on and `available − reserved` is below its threshold: a committed
        change may have recorded a recharge to hand over (ledger.recharge_crossings)."""
        threshold = self.auto_recharge_threshold_paisa
        return (
            threshold is not None
            and spendable_paisa(self.available_paisa, self.reserved_paisa) < threshold
        )

    @property
    def below_alert_threshold(self) -> bool:
        return below_alert_threshold(
            available_paisa=self.available_paisa, alert_threshold_paisa=self.alert_threshold_paisa
        )


@dataclass(frozen=True)
class AuthorizeDecision:
    """The ledger's authorization decision: the `authorize` update's result
    (`domain.contracts.AuthorizeResult.of`) plus what the workflow needs."""

    authorized: bool
    reason: str | None
    hold_paisa: int
    available_paisa: int
    rate_card_version: int | None
    margin_rate: str = "0.30"
    rate_card: RateCard | None = None
    balance: BalanceSnapshot | None = None


@dataclass
class FinalizeCallRequest:
    """`events_json` set (workflows since the ledger keeps usage): the events not yet
    checkpointed; the ledger records them (once per event id) and prices everything it has for
    the call. None: the workflow's own totals in `usage` are priced (workflows from before)."""

    call_id: str
    outcome: str
    hangup_reason: str | None = None
    ended_at: str | None = None  # ISO time
    usage: list[UsageLine] = field(default_factory=list)
    usage_event_count: int = 0
    rejected_event_count: int = 0
    events_json: str | None = None  # `domain.contracts.call_usage.events_to_json`
    batch: str = "final"  # recorded on the events: a retried attempt recognizes its own rows


@dataclass(frozen=True)
class FinalizedCall:
    call_id: str
    account_id: str
    outcome: str
    charged: bool
    breakdown: Breakdown
    transaction_id: int | None
    balance: BalanceSnapshot | None = None
    # The ledger's view of the call's usage (None in results recorded before it kept usage).
    usage: list[UsageLine] | None = None
    usage_event_count: int | None = None
    duplicate_event_ids: list[str] = field(default_factory=list)
