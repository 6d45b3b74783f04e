"""What an osmAPI charge takes and gives back (ledger.api_requests): the finished request, its
charge or error, each account after its charges, and `NeedsSession` for the fast path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from domain.contracts.accounts import LowBalanceAlert
from domain.ledger_types import BalanceSnapshot
from ledger.errors import BillingError
from ledger.posting import request_hash


@dataclass(frozen=True)
class ApiUsage:
    """One finished LLM request to charge."""

    request_id: str
    account_id: str
    sku: str
    input_tokens: int
    output_tokens: int

    def payload_hash(self) -> str:
        return request_hash(
            {
                "account_id": self.account_id,
                "sku": self.sku,
                "in": self.input_tokens,
                "out": self.output_tokens,
            }
        )


@dataclass(frozen=True)
class ApiCharge:
    """A request's charge: posted now, or `replayed` (charged before under its request_id)."""

    request_id: str
    account_id: str
    sku: str
    input_tokens: int
    output_tokens: int
    rate_card_version: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int
    transaction_id: int | None
    replayed: bool = False


@dataclass(frozen=True)
class ApiChargeError:
    """A request that was not charged, and why (nothing was written for it)."""

    request_id: str
    error: BillingError


@dataclass(frozen=True)
class AccountAfter:
    """An account after its charges: the snapshot, this month's usage, and `available` before
    (so the caller can tell a low-balance crossing)."""

    balance: BalanceSnapshot
    month_usage_paisa: int
    available_before_paisa: int


@dataclass(frozen=True)
class ApiChargeResult:
    items: list[ApiCharge | ApiChargeError]  # in request order
    accounts: dict[str, AccountAfter]
    alerts: list[LowBalanceAlert] = field(default_factory=list)  # crossings recorded
    # Auto-recharge crossings (account, crossing version, paisa): their checkouts are recorded.
    recharges: list[tuple[str, int, int]] = field(default_factory=list)


class NeedsSession(Exception):
    """Some accounts need what only a Session does: ledger.posting.housekeeping first (expired
    promo, stale holds), or an auto-recharge checkout for a crossing (ledger.recharge_crossings).
    Raised before anything is written."""

    def __init__(self, account_ids: Sequence[str]) -> None:
        super().__init__(", ".join(account_ids))
        self.account_ids = list(account_ids)
