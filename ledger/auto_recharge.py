"""Auto-recharge (contract §6): settings on the account, and the one checkout per crossing that
a recurring charge on the saved method pays. Failures are counted where checkouts fail
(`ledger.payments`): three in a row switch it off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from db.models import Account
from db.payment_models import Checkout, PaymentMethod
from domain.balance_rules import spendable_paisa
from domain.contracts import CheckoutKind, CheckoutStatus
from domain.contracts.payments import AutoRechargeRequest
from domain.ledger_types import BalanceSnapshot
from ledger.errors import ValidationFailed
from ledger.payments import create_checkout
from ledger.posting import MAX_AMOUNT_PAISA, new_id, require_account, snapshot, utcnow
from ledger.repositories import payments as rows


@dataclass(frozen=True)
class AutoRechargeSettings:
    enabled: bool
    threshold_paisa: int | None
    amount_paisa: int | None
    consecutive_failures: int
    method: PaymentMethod | None


def settings_of(session: Session, account: Account) -> AutoRechargeSettings:
    method = (
        rows.get_method(session, account.auto_recharge_method_id)
        if account.auto_recharge_method_id
        else rows.latest_method(session, account.id)
    )
    return AutoRechargeSettings(
        enabled=account.auto_recharge_enabled,
        threshold_paisa=account.auto_recharge_threshold_paisa,
        amount_paisa=account.auto_recharge_amount_paisa,
        consecutive_failures=account.auto_recharge_failures,
        method=method,
    )


def configure(
    session: Session,
    account_id: str,
    *,
    enabled: bool,
    threshold_paisa: int | None,
    amount_paisa: int | None,
    min_amount_paisa: int,
    max_amount_paisa: int,
) -> tuple[AutoRechargeSettings, BalanceSnapshot]:
    """Turn auto-recharge on (needs a saved method, a threshold and an amount within the
    checkout bounds) or off. Turning it on clears the failure count."""
    account = require_account(session, account_id)
    if threshold_paisa is not None and not 0 <= threshold_paisa <= MAX_AMOUNT_PAISA:
        raise ValidationFailed("auto_recharge.threshold_paisa is out of range")
    if amount_paisa is not None and not min_amount_paisa <= amount_paisa <= max_amount_paisa:
        raise ValidationFailed(
            f"auto_recharge.amount_paisa must be between {min_amount_paisa} and "
            f"{max_amount_paisa} paisa"
        )
    if enabled:
        # Omitted: the values stored before (turning it back on keeps the last settings).
        if threshold_paisa is None:
            threshold_paisa = account.auto_recharge_threshold_paisa
        if amount_paisa is None:
            amount_paisa = account.auto_recharge_amount_paisa
        if threshold_paisa is None or amount_paisa is None:
            raise ValidationFailed("auto_recharge needs threshold_paisa and amount_paisa")
        method = (
            rows.get_method(session, account.auto_recharge_method_id)
            if account.auto_recharge_method_id
            else rows.latest_method(session, account.id)
        )
        if method is None:
            raise ValidationFailed(
                "auto_recharge needs a saved payment method: buy credits once with "
                "save_method: true",
                code="no_saved_method",
            )
        account.auto_recharge_method_id = method.id
        account.auto_recharge_failures = 0
    if threshold_paisa is not None:
        account.auto_recharge_threshold_paisa = threshold_paisa
    if amount_paisa is not None:
        account.auto_recharge_amount_paisa = amount_paisa
    account.auto_recharge_enabled = enabled
    session.flush()
    return settings_of(session, account), snapshot(account)


def saved_customer_id(session: Session, account_id: str) -> str | None:
    """The gateway customer of the account's auto-recharge method (orders for its charges
    name it)."""
    account = session.get(Account, account_id)
    if account is None or account.auto_recharge_method_id is None:
        return None
    method = rows.get_method(session, account.auto_recharge_method_id)
    return method.customer_id if method is not None else None


def crossing_key(account_id: str, crossing_version: int) -> str:
    return f"auto-recharge:{account_id}:{crossing_version}"


def start(
    session: Session, request: AutoRechargeRequest, *, expires_at: datetime
) -> tuple[Checkout | None, str | None]:
    """The checkout for one crossing (idempotent on the crossing), or None and why not: turned
    off meanwhile, balance back above the threshold, or another recharge still in progress."""
    account = require_account(session, request.account_id)
    key = crossing_key(request.account_id, request.crossing_version)
    existing = rows.checkout_by_request_key(session, key)
    if existing is not None:
        return existing, None
    if not account.auto_recharge_enabled or account.auto_recharge_method_id is None:
        return None, "auto-recharge is off"
    threshold = account.auto_recharge_threshold_paisa or 0
    spendable = spendable_paisa(account.paid_paisa + account.promo_paisa, account.reserved_paisa)
    if spendable >= threshold:
        return None, "the balance is back above the threshold"
    if rows.open_auto_recharge(session, account.id, utcnow()) is not None:
        return None, "another auto-recharge is in progress"
    checkout = create_checkout(
        session,
        checkout_id=new_id("chk"),
        account_id=account.id,
        order_id=None,
        amount_paisa=account.auto_recharge_amount_paisa or 0,
        expires_at=expires_at,
        kind=CheckoutKind.AUTO_RECHARGE,
        request_key=key,
    )
    return checkout, None


def set_order(session: Session, checkout_id: str, order_id: str) -> Checkout:
    """The gateway order of an auto-recharge checkout; the first one stored wins (a retried
    create leaves an unpaid order at the gateway, which is harmless)."""
    checkout = rows.lock_checkout(session, checkout_id)
    assert checkout is not None
    if checkout.order_id is None:
        checkout.order_id = order_id
        session.flush()
    return checkout


@dataclass(frozen=True)
class RecurringChargeTerms:
    checkout_id: str
    order_id: str
    account_id: str
    amount_paisa: int
    customer_id: str
    token_id: str
    email: str
    status: CheckoutStatus


def charge_terms(session: Session, order_id: str) -> RecurringChargeTerms | None:
    checkout = rows.checkout_by_order(session, order_id)
    if checkout is None:
        return None
    account = session.get(Account, checkout.account_id)
    assert account is not None
    method = (
        rows.get_method(session, account.auto_recharge_method_id)
        if account.auto_recharge_method_id
        else None
    )
    if method is None:
        return None
    return RecurringChargeTerms(
        checkout_id=checkout.id,
        order_id=order_id,
        account_id=account.id,
        amount_paisa=checkout.amount_paisa,
        customer_id=method.customer_id,
        token_id=method.token_id,
        email=account.email,
        status=CheckoutStatus(checkout.status),
    )
