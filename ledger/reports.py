"""Ledger-wide figures for operations: what /metrics reports at each scrape, and the round trip
/healthz makes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.repositories import accounts as account_rows
from ledger.repositories import holds as hold_rows
from ledger.repositories import journal


@dataclass(frozen=True)
class LedgerTotals:
    charges: dict[str, tuple[int, int]]  # call_charge / api_charge -> (count, paisa charged)
    active_holds: int
    reserved_paisa: int


def ledger_totals(session: Session) -> LedgerTotals:
    holds, reserved = hold_rows.active_hold_totals(session)
    return LedgerTotals(
        charges=journal.charge_totals_by_kind(session), active_holds=holds, reserved_paisa=reserved
    )


def ping(session: Session) -> None:
    """One round trip to PostgreSQL; raises when it does not answer."""
    account_rows.ping(session)
