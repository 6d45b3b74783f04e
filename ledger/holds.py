"""Holds: the credit a call in progress reserves, captured or voided when it ends, and the sweep
that releases the holds of calls that never finalized."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from db.models import Account, Hold
from domain.balance_rules import hold_paisa
from ledger.plain_accounts import AccountRow
from ledger.policy import LedgerPolicy
from ledger.posting import housekeeping, require_account, utcnow
from ledger.repositories import holds as hold_rows


def call_hold_reference(call_id: str) -> str:
    return f"call:{call_id}"


def call_hold_size(policy: LedgerPolicy, account: AccountRow) -> int:
    return hold_paisa(
        call_hold_paisa=policy.call_hold_paisa, min_balance_paisa=account.min_balance_paisa
    )


def place_call_hold(
    session: Session, policy: LedgerPolicy, account: Account, call_id: str, started: datetime
) -> int:
    """Reserve the call's hold until max duration + grace after it started; returns its size.
    The account row must already be locked."""
    amount = call_hold_size(policy, account)
    session.add(
        Hold(
            account_id=account.id,
            reference=call_hold_reference(call_id),
            amount_paisa=amount,
            status="active",
            expires_at=started + policy.max_call_duration + policy.hold_grace,
        )
    )
    account.reserved_paisa += amount
    return amount


def end_call_hold(
    session: Session, account: Account, call_id: str, *, captured: bool, now: datetime
) -> None:
    """Capture (a charged call) or void the call's hold, if it is still active."""
    hold = hold_rows.hold_by_reference(session, call_hold_reference(call_id))
    if hold is not None and hold.status == "active":
        hold.status = "captured" if captured else "voided"
        hold.released_at = now
        account.reserved_paisa -= hold.amount_paisa


def release_stale_holds(session: Session, now: datetime | None = None, limit: int = 100) -> int:
    """Sweep: expire holds of calls that never finalized (max duration + grace passed)."""
    now = now or utcnow()
    released = 0
    for account_id in hold_rows.accounts_with_stale_holds(session, now, limit):
        account = require_account(session, account_id)
        before = account.reserved_paisa
        housekeeping(session, account, now)
        released += before - account.reserved_paisa
    return released
