"""Calls and osmAPI requests: what was charged, for which usage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ApiRequest, Call


def get_call(session: Session, call_id: str, *, lock: bool = False) -> Call | None:
    statement = select(Call).where(Call.call_id == call_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def list_calls(
    session: Session, account_id: str, before: tuple[datetime, str] | None, limit: int
) -> Sequence[Call]:
    statement = select(Call).where(Call.account_id == account_id)
    if before is not None:
        statement = statement.where(
            (Call.created_at < before[0])
            | ((Call.created_at == before[0]) & (Call.call_id < before[1]))
        )
    return session.scalars(
        statement.order_by(Call.created_at.desc(), Call.call_id.desc()).limit(limit)
    ).all()


def calls_updated_since(
    session: Session, account_id: str, since: datetime, limit: int
) -> Sequence[Call]:
    """An account's calls updated at or after `since`, plus every active one, oldest change
    first."""
    return session.scalars(
        select(Call)
        .where(
            Call.account_id == account_id,
            (Call.updated_at >= since) | (Call.status == "active"),
        )
        .order_by(Call.updated_at)
        .limit(limit)
    ).all()


def api_request(session: Session, request_id: str) -> ApiRequest | None:
    return session.get(ApiRequest, request_id)
