"""Shape what the API's services return into the JSON the dashboard pages render: labels and
local times added, nothing recomputed. Money stays integer paisa; the page formats it
(static/money.js ports domain.money.format_inr with integer math). Exact per-usage costs are
Decimal strings, never floats."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from api.accounts import service as account_service
from api.calls import service as call_service
from api.calls.service import CallRead
from api.schemas import BalanceOut
from db.models import Account, Call, LedgerTransaction
from domain.balance_rules import MAX_ALERT_THRESHOLD_PAISA, is_refused, spendable_paisa
from domain.channels import COMPONENT_ORDER
from domain.contracts import CallState
from domain.contracts.calls import CallBreakdown
from domain.history import CALL_TRANSACTION_KINDS, CallFilter, TransactionFilter
from domain.money import format_inr
from domain.periods import BILLING_TZ, Month
from domain.rating import UsageLine
from ledger import balances, rate_cards
from ledger import calls as ledger_calls
from ledger.balances import BalanceSummary
from ledger.posting import utcnow

COMPONENT_LABELS = {"llm": "LLM", "stt": "STT", "tts": "TTS", "sip": "SIP"}
COMPONENT_HELP = {
    "llm": "the AI brain",
    "stt": "speech-to-text",
    "tts": "text-to-speech",
    "sip": "phone line",
}
UNIT_LABELS = {
    "input_tokens": "input tokens",
    "cached_input_tokens": "cached input tokens",
    "output_tokens": "output tokens",
    "audio_seconds": "seconds of audio",
    "characters": "characters",
    "seconds": "seconds of line time",
}
KIND_LABELS = {
    "topup": "Top-up",
    "promo_grant": "Promo credit",
    "coupon": "Coupon",
    "call_charge": "Call",
    "call_adjustment": "Call adjustment",
    "api_charge": "osmAPI request",
    "refund": "Refund",
    "refund_reversal": "Refund reversed",
    "promo_expiry": "Promo expired",
    "adjustment": "Adjustment",
}
OUTCOME_LABELS = {
    "completed": "Completed",
    "voicemail": "Voicemail",
    "failed": "Failed",
    "no_answer": "No answer",
    "busy": "Busy",
    "rejected": "Rejected",
    "abandoned": "Abandoned",
    "refused": "Refused",
}
CALL_CHARGES_SHOWN = 100  # a call's transactions listed in its breakdown
CHANNEL_LABELS = {"phone": "Phone", "web": "Web", "whatsapp": "WhatsApp", "chat": "Chat"}


def local_label(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(BILLING_TZ).strftime("%d %b %Y, %H:%M:%S")


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment else None


def balance_view(balance: BalanceOut, version: int) -> dict[str, Any]:
    """`GET /v1/accounts/{id}/balance`'s body, plus what the page shows from it."""
    return {
        **balance.model_dump(mode="json"),
        "spendable_paisa": spendable_paisa(balance.available_paisa, balance.reserved_paisa),
        # A new call would be refused (the refusal rule of domain.balance_rules).
        "low_balance": is_refused(
            available_paisa=balance.available_paisa,
            reserved_paisa=balance.reserved_paisa,
            min_balance_paisa=balance.min_balance_paisa,
        ),
        "version": version,
    }


def summary_balance_view(summary: BalanceSummary) -> dict[str, Any]:
    return balance_view(BalanceOut.of(summary), summary.balance.version)


def daily_view(days: Sequence[tuple[str, int]], now: datetime) -> dict[str, Any]:
    """Every day of the current month in Asia/Kolkata, with the spend so far (paisa)."""
    local = now.astimezone(BILLING_TZ)
    spent = dict(days)
    last = calendar.monthrange(local.year, local.month)[1]
    points = []
    for day in range(1, last + 1):
        key = f"{local.year:04d}-{local.month:02d}-{day:02d}"
        points.append({"date": key, "day": day, "paisa": spent.get(key, 0)})
    return {"month_label": local.strftime("%B %Y"), "today": local.day, "days": points}


def summary_payload(
    session: Session, account_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The balance (the API's `balance_summary`) and this month's daily spend."""
    now = now or utcnow()
    summary = balances.balance_summary(session, account_id, now)
    return {
        "balance": summary_balance_view(summary),
        "daily": daily_view(balances.daily_spend_this_month(session, account_id, now), now),
    }


def settings_view(account: Account) -> dict[str, Any]:
    out = account_service.account_out(account)
    return {
        "alert_threshold_paisa": out.alert_threshold_paisa,
        "effective_alert_threshold_paisa": (
            out.alert_threshold_paisa
            if out.alert_threshold_paisa is not None
            else out.min_balance_paisa
        ),
        "min_balance_paisa": out.min_balance_paisa,
        "max_alert_threshold_paisa": MAX_ALERT_THRESHOLD_PAISA,
        "email": out.email,
    }


def transaction_view(tx: LedgerTransaction) -> dict[str, Any]:
    return {
        "id": tx.id,
        "call_id": tx.reference if tx.kind in CALL_TRANSACTION_KINDS else None,
        "kind": tx.kind,
        "kind_label": KIND_LABELS.get(tx.kind, tx.kind.replace("_", " ").capitalize()),
        "description": tx.description,
        "reference": tx.reference,
        "amount_paisa": tx.amount_paisa,
        "paid_delta_paisa": tx.paid_delta_paisa,
        "promo_delta_paisa": tx.promo_delta_paisa,
        "balance_after": tx.balance_after,
        "paid_balance_after": tx.paid_balance_after,
        "promo_balance_after": tx.promo_balance_after,
        "created_at": iso(tx.created_at),
        "created_label": local_label(tx.created_at),
        "receipt_url": _receipt_url(tx),
    }


def _receipt_url(tx: LedgerTransaction) -> str | None:
    """A top-up paid through a checkout links to its printable receipt."""
    checkout_id = (tx.details or {}).get("checkout_id") if tx.kind == "topup" else None
    return f"/billing/receipts/{checkout_id}" if isinstance(checkout_id, str) else None


def transactions_page(
    session: Session,
    account_id: str,
    cursor: str | None,
    limit: int,
    filters: TransactionFilter | None = None,
) -> dict[str, Any]:
    rows, next_cursor = account_service.transactions_page(
        session, account_id, cursor, limit, filters
    )
    return {"items": [transaction_view(tx) for tx in rows], "next_cursor": next_cursor}


def _status_label(call: Call) -> str:
    if call.status == CallState.ACTIVE:
        return "In progress"
    return OUTCOME_LABELS.get(call.outcome or "", (call.outcome or "").replace("_", " "))


def call_row(
    call: Call, now: datetime | None = None, running: CallBreakdown | None = None
) -> dict[str, Any]:
    """One row of the Calls page. `running` is the workflow's running breakdown, if known."""
    now = now or utcnow()
    started = call.started_at or call.created_at
    active = call.status == CallState.ACTIVE
    seconds = call_service.duration_seconds(call, now)
    cost: int | None
    if active:
        cost = running.total_paisa if running is not None else None
    else:
        cost = call.total_paisa or 0
    return {
        "call_id": call.call_id,
        "channel": call.channel,
        "channel_label": CHANNEL_LABELS.get(call.channel, call.channel),
        "status": call.status,
        "active": active,
        "outcome": call.outcome,
        "status_label": _status_label(call),
        "started_at": iso(started),
        "started_label": local_label(started),
        "created_at": iso(call.created_at),
        "month": str(Month.of(call.created_at)),  # what the `from`/`to` filters look at
        "duration_seconds": seconds,
        "cost_paisa": cost,
        "running_cost": active and cost is not None,
        "updated_at": iso(call.updated_at),
    }


def _grouped(quantity: Decimal) -> str:
    """A usage quantity with Indian digit grouping: 24000 -> '24,000', 60.5 -> '60.5'."""
    text = format(quantity.normalize(), "f")
    whole, dot, frac = text.partition(".")
    grouped = format_inr(int(whole) * 100).split(".")[0].replace("₹", "")
    return grouped + (dot + frac if frac else "")


def _exact_inr(amount: Decimal) -> str:
    """An exact INR amount with at least two decimals, e.g. ₹0.0083 or ₹2.20 (display only)."""
    text = format(amount.normalize(), "f")
    whole, _, frac = text.partition(".")
    frac = frac.ljust(2, "0")
    rupees = int(whole)
    grouped = format_inr(rupees * 100).split(".")[0]
    return f"{grouped}.{frac}"


def call_detail(session: Session, read: CallRead, now: datetime | None = None) -> dict[str, Any]:
    """The breakdown LLM + STT + TTS + SIP, provider total, margin and total, with the usage
    (quantity × unit price of the call's pinned rate card) behind each component. An active
    call shows the workflow's running `status`, when known (`api.calls.service.read_call`)."""
    call, running = read.call, read.running
    row = call_row(call, now, running.breakdown if running else None)
    breakdown: CallBreakdown | None
    usage_lines: list[UsageLine]
    if call.status == CallState.ACTIVE:
        breakdown = running.breakdown if running else None
        usage_lines = running.usage if running else []
    else:
        breakdown = CallBreakdown.of(ledger_calls.call_breakdown(call))
        usage_lines = [UsageLine(**line) for line in call.usage or []]
    prices: dict[tuple[str, str], Decimal] = {}
    if call.rate_card_version is not None:
        prices = rate_cards.load_rate_card(session, call.rate_card_version).price_map()
    margin_rate = Decimal(str(call.margin_rate))
    components = []
    for component in COMPONENT_ORDER:
        name = component.value
        lines = []
        for line in usage_lines:
            if line.component != name:
                continue
            quantity = Decimal(line.quantity)
            price = prices.get((line.sku, line.unit))
            lines.append(
                {
                    "sku": line.sku,
                    "unit": line.unit,
                    "unit_label": UNIT_LABELS.get(line.unit, line.unit),
                    "quantity": _grouped(quantity),
                    "unit_price_inr": format(price.normalize(), "f") if price is not None else None,
                    "cost_exact": _exact_inr(quantity * price) if price is not None else None,
                }
            )
        components.append(
            {
                "component": name,
                "label": COMPONENT_LABELS[name],
                "help": COMPONENT_HELP[name],
                "paisa": getattr(breakdown, f"{name}_paisa") if breakdown else 0,
                "lines": lines,
            }
        )
    charges, complete = call_charges(session, call)
    return {
        **row,
        "charges": charges,
        # What late usage after the hangup added (contract §3), when every adjustment is shown.
        "adjustment_paisa": (
            -sum(c["amount_paisa"] for c in charges if c["kind"] == "call_adjustment")
            if complete
            else None
        ),
        "hangup_reason": call.hangup_reason,
        "refusal_reason": call.refusal_reason,
        "rate_card_version": call.rate_card_version,
        "ended_label": local_label(call.ended_at),
        "components": components,
        "provider_total_paisa": breakdown.provider_total_paisa if breakdown else 0,
        "margin_paisa": breakdown.margin_paisa if breakdown else 0,
        "total_paisa": breakdown.total_paisa if breakdown else 0,
        "margin_percent": format((margin_rate * 100).normalize(), "f"),
        "has_breakdown": breakdown is not None,
    }


def call_charges(session: Session, call: Call) -> tuple[list[dict[str, Any]], bool]:
    """The call's transactions, oldest first (its charge at hangup, then any adjustments for
    late usage: their sum is the breakdown's total), and whether that is all of them."""
    if call.status == CallState.ACTIVE:
        return [], True
    rows = balances.list_transactions(
        session,
        call.account_id,
        before_id=None,
        limit=CALL_CHARGES_SHOWN,
        filters=TransactionFilter(call_id=call.call_id),
    )
    charges = [
        {
            "id": tx.id,
            "kind": tx.kind,
            "kind_label": KIND_LABELS.get(tx.kind, tx.kind),
            "amount_paisa": tx.amount_paisa,
            "created_label": local_label(tx.created_at),
        }
        for tx in reversed(rows)
        if tx.reference == call.call_id  # the filter also matches ids that begin with this one
    ]
    return charges, len(rows) < CALL_CHARGES_SHOWN


def calls_page(
    session: Session,
    account_id: str,
    cursor: str | None,
    limit: int,
    filters: CallFilter | None = None,
) -> dict[str, Any]:
    rows, next_cursor = call_service.calls_page(session, account_id, cursor, limit, filters)
    now = utcnow()
    return {"items": [call_row(call, now) for call in rows], "next_cursor": next_cursor}
