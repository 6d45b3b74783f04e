"""Auto-recharge (contract §6): settings on the account, the checkouts its crossings record
(ledger.recharge_crossings) and what their gateway orders and recurring charges need. Failures
are counted where checkouts fail (`ledger.payments`): three in a row switch it off."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Account
from db.payment_models import Checkout, PaymentMethod
from domain.contracts import CheckoutKind, CheckoutStatus
from domain.ledger_types import BalanceSnapshot
from ledger.errors import NotFound, ValidationFailed
from ledger.posting import MAX_AMOUNT_PAISA, require_account, snapshot, utcnow
from ledger.recharge_crossings import record_recharge_crossing
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
    record_recharge_crossing(session, account)  # turned on while already below: a crossing
    return settings_of(session, account), snapshot(account)


def saved_customer_id(session: Session, account_id: str) -> str | None:
    """The gateway customer of the account's auto-recharge method (orders for its charges
    name it)."""
    account = session.get(Account, account_id)
    if account is None or account.auto_recharge_method_id is None:
        return None
    method = rows.get_method(session, account.auto_recharge_method_id)
    return method.customer_id if method is not None else None


def undelivered(session: Session, account_id: str) -> list[str]:
    """The account's auto-recharge checkouts still without a gateway order (right after a
    commit: the one its crossing recorded)."""
    return [c.id for c in rows.auto_recharges_without_order(session, account_id, utcnow())]


def order_terms(session: Session, checkout_id: str) -> tuple[Checkout, str | None]:
    """What the gateway order of an auto-recharge needs: the checkout and the saved method's
    gateway customer."""
    checkout = rows.get_checkout(session, checkout_id)
    if checkout is None or checkout.kind != CheckoutKind.AUTO_RECHARGE:
        raise NotFound(f"auto-recharge checkout {checkout_id} not found")
    return checkout, saved_customer_id(session, checkout.account_id)


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
