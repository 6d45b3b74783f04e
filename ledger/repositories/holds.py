"""Holds: credit reserved by calls in progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db.models import Hold


def stale_hold_filter(account_id: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """An account's holds still active past their expiry (calls lost for good)."""
    return (Hold.account_id == account_id, Hold.status == "active", Hold.expires_at <= now)


def stale_active_holds(session: Session, account_id: str, now: datetime) -> Sequence[Hold]:
    return session.scalars(
        select(Hold)
        .where(*stale_hold_filter(account_id, now))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def accounts_with_stale_holds(session: Session, now: datetime, limit: int) -> Sequence[str]:
    return session.scalars(
        select(Hold.account_id)
        .where(Hold.status == "active", Hold.expires_at <= now)
        .distinct()
        .order_by(Hold.account_id)  # one lock order for concurrent sweepers
        .limit(limit)
    ).all()


def hold_by_reference(session: Session, reference: str) -> Hold | None:
    return session.scalars(
        select(Hold)
        .where(Hold.reference == reference)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def active_hold_totals(session: Session) -> tuple[int, int]:
    """Ledger-wide: (active holds, Σ their paisa)."""
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(Hold.amount_paisa), 0)).where(
            Hold.status == "active"
        )
    ).one()
    return int(count), int(total)
