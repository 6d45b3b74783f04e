"""Every balance change (call finalization, API charge, top-up, coupon, refund) is reported
here after its ledger transaction commits. The account workflow decides on alerts.

Issue 5 replaces the body with a signal-with-start of `AccountWorkflow` (`account-<id>`).
"""

from __future__ import annotations

from temporalio.client import Client

from domain.ledger_types import BalanceSnapshot


async def notify_balance_changed(client: Client, snapshot: BalanceSnapshot) -> None:
    """Best effort for the caller: the ledger is already committed. Never raises for a
    missing account workflow; it is started on demand."""
    return None
