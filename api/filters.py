"""Query parameters of the history endpoints (contract §4): `from`/`to` dates (Asia/Kolkata,
both inclusive), `type` on transactions, `channel` and `outcome` on calls, `call_id` (a call id
or its beginning), and a statement `month`. Bad input is a 422 with a stable code and changes
nothing: `invalid_date`, `invalid_date_range` (from after to), `date_in_future`,
`invalid_month`, `month_in_future`, `invalid_filter` (an unknown type, channel or outcome)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Query

from domain.history import (
    CallFilter,
    TransactionFilter,
    call_channels,
    call_id_search,
    call_outcomes,
    transaction_kinds,
)
from domain.periods import FilterError, Month, Period, date_range, parse_day, parse_month
from ledger.errors import ValidationFailed
from ledger.posting import utcnow

T = TypeVar("T")

FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=10,
        description="First day, YYYY-MM-DD (Asia/Kolkata), inclusive",
        examples=["2026-11-01"],
    ),
]
ToQuery = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=10,
        description="Last day, YYYY-MM-DD (Asia/Kolkata), inclusive",
        examples=["2026-11-30"],
    ),
]
CallIdQuery = Annotated[
    str | None, Query(max_length=200, description="A call id, or the beginning of one")
]


def checked(work: Callable[[], T]) -> T:
    """Run a domain parser; its refusal becomes a 422 with the parser's code."""
    try:
        return work()
    except FilterError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc


def period_of(first: str | None, last: str | None) -> Period:
    return checked(
        lambda: date_range(
            parse_day(first, "from") if first else None,
            parse_day(last, "to") if last else None,
            utcnow(),
        )
    )


def month_of(text: str) -> Month:
    return checked(lambda: parse_month(text, utcnow()))


def transaction_filter(
    first: FromQuery = None,
    last: ToQuery = None,
    kind: Annotated[
        list[str] | None,
        Query(
            alias="type",
            description="Transaction types (repeat or comma-separate): topup, promo_grant, "
            "coupon, call_charge, call_adjustment, api_charge, refund, refund_reversal, "
            "promo_expiry, adjustment",
        ),
    ] = None,
    call_id: CallIdQuery = None,
) -> TransactionFilter:
    return TransactionFilter(
        kinds=checked(lambda: transaction_kinds(kind or [])),
        period=period_of(first, last),
        call_id=checked(lambda: call_id_search(call_id)),
    )


def call_filter(
    first: FromQuery = None,
    last: ToQuery = None,
    channel: Annotated[
        list[str] | None,
        Query(description="Channels (repeat or comma-separate): phone, web, whatsapp, chat"),
    ] = None,
    outcome: Annotated[
        list[str] | None,
        Query(
            description="Outcomes (repeat or comma-separate): completed, voicemail, failed, "
            "no_answer, busy, rejected, abandoned, refused"
        ),
    ] = None,
    call_id: CallIdQuery = None,
) -> CallFilter:
    return CallFilter(
        channels=checked(lambda: call_channels(channel or [])),
        outcomes=checked(lambda: call_outcomes(outcome or [])),
        period=period_of(first, last),
        call_id=checked(lambda: call_id_search(call_id)),
    )


TransactionFilterDep = Annotated[TransactionFilter, Depends(transaction_filter)]
CallFilterDep = Annotated[CallFilter, Depends(call_filter)]
