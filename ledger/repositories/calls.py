"""Calls and osmAPI requests: what was charged, for which usage."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db.models import ApiRequest, Call, LedgerTransaction
from domain.history import CallFilter
from domain.periods import Period


def get_call(session: Session, call_id: str, *, lock: bool = False) -> Call | None:
    statement = select(Call).where(Call.call_id == call_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()


def _matching(account_id: str, filters: CallFilter) -> list[ColumnElement[bool]]:
    conditions = [Call.account_id == account_id]
    if filters.channels:
        conditions.append(Call.channel.in_(sorted(filters.channels)))
    if filters.outcomes:
        conditions.append(Call.outcome.in_(sorted(filters.outcomes)))
    if filters.period.start is not None:
        conditions.append(Call.created_at >= filters.period.start)
    if filters.period.end is not None:
        conditions.append(Call.created_at < filters.period.end)
    if filters.call_id:
        conditions.append(Call.call_id.startswith(filters.call_id, autoescape=True))
    return conditions


def list_calls(
    session: Session,
    account_id: str,
    before: tuple[datetime, str] | None,
    limit: int,
    filters: CallFilter,
) -> Sequence[Call]:
    """Newest first (by authorization time, then call id)."""
    statement = select(Call).where(*_matching(account_id, filters))
    if before is not None:
        statement = statement.where(
            (Call.created_at < before[0])
            | ((Call.created_at == before[0]) & (Call.call_id < before[1]))
        )
    return session.scalars(
        statement.order_by(Call.created_at.desc(), Call.call_id.desc()).limit(limit)
    ).all()


def iter_calls(
    session: Session, account_id: str, filters: CallFilter, batch: int = 500
) -> Iterator[Call]:
    """Oldest first, streamed from a server-side cursor `batch` rows at a time (exports)."""
    statement = (
        select(Call)
        .where(*_matching(account_id, filters))
        .order_by(Call.created_at, Call.call_id)
        .execution_options(yield_per=batch)
    )
    yield from session.scalars(statement)


@dataclass(frozen=True)
class ChannelSpend:
    channel: str
    calls: int
    seconds: int
    llm_paisa: int
    stt_paisa: int
    tts_paisa: int
    sip_paisa: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int


def _charged_in(period: Period) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if period.start is not None:
        conditions.append(LedgerTransaction.created_at >= period.start)
    if period.end is not None:
        conditions.append(LedgerTransaction.created_at < period.end)
    return conditions


def spend_by_channel(session: Session, account_id: str, period: Period) -> list[ChannelSpend]:
    """Charged calls whose charge was posted in `period`, per channel: count, talk time and
    the breakdown columns summed (a call's row holds its whole breakdown)."""
    begin = func.coalesce(Call.started_at, Call.created_at)
    end = func.coalesce(Call.ended_at, Call.finalized_at, begin)
    seconds = func.greatest(0, func.floor(func.extract("epoch", end - begin)))
    columns = [
        Call.llm_paisa,
        Call.stt_paisa,
        Call.tts_paisa,
        Call.sip_paisa,
        Call.provider_total_paisa,
        Call.margin_paisa,
        Call.total_paisa,
    ]
    rows = session.execute(
        select(
            Call.channel,
            func.count(),
            func.coalesce(func.sum(seconds), 0),
            *(func.coalesce(func.sum(column), 0) for column in columns),
        )
        .join(LedgerTransaction, LedgerTransaction.id == Call.transaction_id)
        .where(Call.account_id == account_id, *_charged_in(period))
        .group_by(Call.channel)
        .order_by(Call.channel)
    ).all()
    return [ChannelSpend(str(row[0]), *(int(value) for value in row[1:])) for row in rows]


@dataclass(frozen=True)
class ApiSpend:
    requests: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int


def api_request_spend(session: Session, account_id: str, period: Period) -> ApiSpend:
    """osmAPI requests charged in `period`."""
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(ApiRequest.provider_total_paisa), 0),
            func.coalesce(func.sum(ApiRequest.margin_paisa), 0),
            func.coalesce(func.sum(ApiRequest.total_paisa), 0),
        )
        .join(LedgerTransaction, LedgerTransaction.id == ApiRequest.transaction_id)
        .where(ApiRequest.account_id == account_id, *_charged_in(period))
    ).one()
    return ApiSpend(*(int(value) for value in row))


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
