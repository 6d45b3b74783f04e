"""What a customer can filter their history by (contract §4): transaction types, call channels
and outcomes, a period, a call id. Pure; unknown values are refused with `invalid_filter`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from domain.channels import Channel, Outcome
from domain.periods import FilterError, Period


class TransactionKind(StrEnum):
    """Every `kind` a ledger transaction may have."""

    TOPUP = "topup"
    PROMO_GRANT = "promo_grant"
    COUPON = "coupon"
    CALL_CHARGE = "call_charge"
    CALL_ADJUSTMENT = "call_adjustment"  # late usage re-priced after hangup (contract §3)
    API_CHARGE = "api_charge"
    REFUND = "refund"
    REFUND_REVERSAL = "refund_reversal"
    PROMO_EXPIRY = "promo_expiry"
    ADJUSTMENT = "adjustment"


# Transactions that belong to a call (their `reference` is the call id).
CALL_TRANSACTION_KINDS = frozenset({TransactionKind.CALL_CHARGE, TransactionKind.CALL_ADJUSTMENT})

MAX_CALL_ID_LENGTH = 200


@dataclass(frozen=True)
class TransactionFilter:
    kinds: frozenset[str] = field(default_factory=frozenset)  # empty: every kind
    period: Period = field(default_factory=Period)
    call_id: str | None = None  # a call id or its beginning


@dataclass(frozen=True)
class CallFilter:
    channels: frozenset[str] = field(default_factory=frozenset)
    outcomes: frozenset[str] = field(default_factory=frozenset)
    period: Period = field(default_factory=Period)  # on the call's start (authorization)
    call_id: str | None = None  # a call id or its beginning


def _choices(values: Iterable[str], allowed: Iterable[str], name: str) -> frozenset[str]:
    """Repeated (`?type=a&type=b`) or comma-separated (`?type=a,b`) values, each known."""
    known = set(allowed)
    chosen = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(chosen - known)
    if unknown:
        raise FilterError(
            f"unknown {name} {', '.join(map(repr, unknown))}; one of {', '.join(sorted(known))}",
            "invalid_filter",
        )
    return frozenset(chosen)


def transaction_kinds(values: Iterable[str]) -> frozenset[str]:
    return _choices(values, (k.value for k in TransactionKind), "type")


def call_channels(values: Iterable[str]) -> frozenset[str]:
    return _choices(values, (c.value for c in Channel), "channel")


def call_outcomes(values: Iterable[str]) -> frozenset[str]:
    return _choices(values, (o.value for o in Outcome), "outcome")


def call_id_search(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > MAX_CALL_ID_LENGTH:
        raise FilterError(f"call_id is longer than {MAX_CALL_ID_LENGTH}", "invalid_filter")
    return text or None
