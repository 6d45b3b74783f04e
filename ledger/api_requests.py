"""osmAPI (the LLM gateway) shares the balance: authorize before forwarding a request (the
refusal rule, no hold), charge it when done (never refused: the work is done)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from db.models import ApiRequest
from domain.channels import Channel, Component
from domain.ledger_types import REASON_INSUFFICIENT_BALANCE, AuthorizeDecision, BalanceSnapshot
from domain.rating import RatingError, UsageTotals, price_usage, validate_usage_event
from ledger.errors import Conflict, ValidationFailed
from ledger.posting import (
    debit,
    fresh_account,
    housekeeping,
    margin_rate,
    refused,
    request_hash,
    require_account,
    snapshot,
    utcnow,
)
from ledger.rate_cards import current_rate_card
from ledger.repositories import calls as call_rows


def authorize_api_request(
    session: Session, *, account_id: str, now: datetime | None = None
) -> AuthorizeDecision:
    now = now or utcnow()
    account = fresh_account(session, account_id, now)
    authorized = not refused(account)
    card = current_rate_card(session, now)
    return AuthorizeDecision(
        authorized=authorized,
        reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
        hold_paisa=0,
        available_paisa=account.paid_paisa + account.promo_paisa,
        rate_card_version=card.version,
        margin_rate=str(margin_rate(account)),
        balance=snapshot(account),
    )


def find_api_request(session: Session, request_id: str) -> ApiRequest | None:
    """The request already charged under this id, if any."""
    return call_rows.api_request(session, request_id)


def charge_api_usage(
    session: Session,
    *,
    request_id: str,
    account_id: str,
    sku: str,
    input_tokens: int,
    output_tokens: int,
    now: datetime | None = None,
) -> tuple[ApiRequest, BalanceSnapshot]:
    """Charge a finished LLM request; never refused (the work is done). Idempotent on
    request_id; the same id with a different body is a conflict."""
    now = now or utcnow()
    if not request_id or len(request_id) > 200:
        raise ValidationFailed("request_id must be 1 to 200 characters")
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
            raise ValidationFailed(f"{name} must be an integer between 0 and 1000000000")
    payload_hash = request_hash(
        {"account_id": account_id, "sku": sku, "in": input_tokens, "out": output_tokens}
    )
    account = require_account(session, account_id)
    # Settled first (as a read would): expired promo must not pay, and a replay's snapshot is
    # as fresh as the first answer's.
    housekeeping(session, account, now)
    existing = call_rows.api_request(session, request_id)
    if existing is not None:
        if existing.request_hash != payload_hash:
            raise Conflict(f"request {request_id} was charged with a different body")
        return existing, snapshot(account)
    card = current_rate_card(session, now)
    try:
        event = validate_usage_event(
            {
                "event_id": request_id,
                "component": Component.LLM.value,
                "sku": sku,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
            },
            Channel.CHAT.value,
            card,
        )
    except RatingError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc
    totals = UsageTotals()
    totals.add(event)
    breakdown = price_usage(totals.lines, card, margin_rate(account))
    record = ApiRequest(
        request_id=request_id,
        account_id=account_id,
        sku=sku,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        rate_card_version=card.version,
        provider_total_paisa=breakdown.provider_total_paisa,
        margin_paisa=breakdown.margin_paisa,
        total_paisa=breakdown.total_paisa,
        request_hash=payload_hash,
    )
    if breakdown.total_paisa > 0:
        transaction = debit(
            session,
            account,
            breakdown.total_paisa,
            kind="api_charge",
            key=f"api:{request_id}",
            payload_hash=payload_hash,
            contra=[
                ("provider_payable", breakdown.provider_total_paisa),
                ("margin_revenue", breakdown.margin_paisa),
            ],
            reference=request_id,
            description=f"osmAPI request ({sku})",
            details={"breakdown": breakdown.__dict__, "sku": sku},
        )
        record.transaction_id = transaction.id
    session.add(record)
    session.flush()
    return record, snapshot(account)
