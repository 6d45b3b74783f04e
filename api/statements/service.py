"""Statements, spend insight and the CSV exports, shaped from `ledger.statements`."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from api.statements.schemas import (
    ApiSpendOut,
    ChannelSpendOut,
    ComponentSpendOut,
    StatementLine,
    StatementOut,
    UsageSummaryOut,
)
from domain.channels import COMPONENT_ORDER, Channel
from domain.periods import Month
from ledger import statements
from ledger.statements import ChannelSpend


def _ratio_half_up(numerator: int, denominator: int) -> int | None:
    if denominator <= 0:
        return None
    exact = Decimal(numerator) / Decimal(denominator)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def statement(session: Session, account_id: str, month: Month) -> StatementOut:
    period = month.period()
    found = statements.statement(session, account_id, period)
    assert period.start is not None and period.end is not None
    return StatementOut(
        account_id=account_id,
        month=str(month),
        first_day=month.first_day,
        last_day=month.last_day,
        period_start=period.start,
        period_end=period.end,
        opening_balance_paisa=found.opening_balance_paisa,
        credits_paisa=found.credits_paisa,
        debits_paisa=found.debits_paisa,
        closing_balance_paisa=found.closing_balance_paisa,
        transaction_count=found.transaction_count,
        credits={line.kind: line.credits_paisa for line in found.lines if line.credits_paisa},
        debits={line.kind: line.debits_paisa for line in found.lines if line.debits_paisa},
        lines=[
            StatementLine(
                kind=line.kind,
                count=line.count,
                credits_paisa=line.credits_paisa,
                debits_paisa=line.debits_paisa,
            )
            for line in found.lines
        ],
    )


def _channel_out(channel: str, spend: ChannelSpend | None) -> ChannelSpendOut:
    if spend is None:
        return ChannelSpendOut(
            channel=channel,
            calls=0,
            seconds=0,
            provider_total_paisa=0,
            margin_paisa=0,
            total_paisa=0,
            average_call_paisa=None,
            per_minute_paisa=None,
        )
    return ChannelSpendOut(
        channel=channel,
        calls=spend.calls,
        seconds=spend.seconds,
        provider_total_paisa=spend.provider_total_paisa,
        margin_paisa=spend.margin_paisa,
        total_paisa=spend.total_paisa,
        average_call_paisa=_ratio_half_up(spend.total_paisa, spend.calls),
        per_minute_paisa=_ratio_half_up(spend.total_paisa * 60, spend.seconds),
    )


def usage_summary(session: Session, account_id: str, month: Month) -> UsageSummaryOut:
    found = statements.usage_summary(session, account_id, month.period())
    spent = {row.channel: row for row in found.channels}
    channels = [_channel_out(c.value, spent.get(c.value)) for c in Channel]
    components = {
        c.value: sum(getattr(row, f"{c.value}_paisa") for row in found.channels)
        for c in COMPONENT_ORDER
    }
    components["llm"] += found.api.provider_total_paisa  # osmAPI requests are LLM requests
    return UsageSummaryOut(
        account_id=account_id,
        month=str(month),
        total_paisa=sum(c.total_paisa for c in channels) + found.api.total_paisa,
        provider_total_paisa=sum(c.provider_total_paisa for c in channels)
        + found.api.provider_total_paisa,
        margin_paisa=sum(c.margin_paisa for c in channels) + found.api.margin_paisa,
        by_channel=channels,
        by_component=[
            ComponentSpendOut(component=name, provider_paisa=paisa)
            for name, paisa in components.items()
        ],
        osmapi=ApiSpendOut(
            requests=found.api.requests,
            provider_total_paisa=found.api.provider_total_paisa,
            margin_paisa=found.api.margin_paisa,
            total_paisa=found.api.total_paisa,
        ),
    )
