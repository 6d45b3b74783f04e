"""Ledger-wide figures for operations: the gauges the API's metrics endpoint shows (refreshed
in the background, api.metrics_server) and the round trip /healthz makes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.repositories import accounts as account_rows
from ledger.repositories import holds as hold_rows


@dataclass(frozen=True)
class HoldTotals:
    active_holds: int
    reserved_paisa: int


def hold_totals(session: Session) -> HoldTotals:
    """Active holds and Σ their paisa, ledger-wide (one aggregate on the active-holds index)."""
    holds, reserved = hold_rows.active_hold_totals(session)
    return HoldTotals(active_holds=holds, reserved_paisa=reserved)


def ping(session: Session) -> None:
    """One round trip to PostgreSQL; raises when it does not answer."""
    account_rows.ping(session)
