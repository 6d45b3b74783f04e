"""An account row as the ledger's plain-statement paths read and update it (the osmAPI charge,
a call's authorize, finalize, void and usage checkpoint): an `AccountRow` without
the ORM. The columns are `ledger.repositories.api_charges.ACCOUNT_COLUMNS`, in this order."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass
class PlainAccount:
    id: str
    paid_paisa: int
    promo_paisa: int
    reserved_paisa: int
    min_balance_paisa: int
    alert_threshold_paisa: int | None
    version: int
    margin_rate: Decimal | None
    low_balance_armed: bool | None
    auto_recharge_enabled: bool
    auto_recharge_threshold_paisa: int | None
    auto_recharge_amount_paisa: int | None
    auto_recharge_armed: bool | None
    # Open lots by kind ("promo", "paid"): [lot id, remaining], oldest first.
    lots: dict[str, list[list[int]]] = field(default_factory=lambda: {"promo": [], "paid": []})

    def flags(self) -> tuple[bool, bool]:
        """The alert and auto-recharge arming as stored (None: armed, the default)."""
        return self.low_balance_armed is not False, self.auto_recharge_armed is not False


class AccountRow(Protocol):
    """What the ledger's balance, alert and auto-recharge rules read of an account: the ORM row
    (`db.models.Account`) or a `PlainAccount` of the plain-statement paths."""

    @property
    def id(self) -> str: ...
    @property
    def paid_paisa(self) -> int: ...
    @property
    def promo_paisa(self) -> int: ...
    @property
    def reserved_paisa(self) -> int: ...
    @property
    def min_balance_paisa(self) -> int: ...
    @property
    def alert_threshold_paisa(self) -> int | None: ...
    @property
    def version(self) -> int: ...
    @property
    def margin_rate(self) -> Decimal | None: ...
    @property
    def low_balance_armed(self) -> bool | None: ...
    @property
    def auto_recharge_enabled(self) -> bool: ...
    @property
    def auto_recharge_threshold_paisa(self) -> int | None: ...
    @property
    def auto_recharge_amount_paisa(self) -> int | None: ...
    @property
    def auto_recharge_armed(self) -> bool | None: ...
