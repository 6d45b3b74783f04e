"""Auto-recharge crossings, decided where the balance moves (like the low-balance alert's,
ledger.alerts): `posting.post` and turning auto-recharge on call `record_recharge_crossing` in
their transaction. The rule is `domain.payments.auto_recharge_step` on the account row's
`auto_recharge_armed` flag, so one crossing writes one auto-recharge checkout (keyed by the
crossing, `auto-recharge:<account>:<version>`) and a balance back at or above the threshold
re-arms. The checkout without an order is the outbox: whoever commits hands it to
`AutoRechargeWorkflow` right after the commit (api.notify, activities.alerts), which creates the
gateway order and the `CheckoutWorkflow` that charges the saved card."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from db.models import Account
from db.payment_models import Checkout
from domain.contracts import CheckoutKind, CheckoutStatus
from domain.payments import AUTO_RECHARGE_WINDOW_SECONDS, CURRENCY, auto_recharge_step
from ledger.plain_accounts import AccountRow
from ledger.repositories import payments as rows


def crossing_key(account_id: str, crossing_version: int) -> str:
    return f"auto-recharge:{account_id}:{crossing_version}"


def recharge_step(account: AccountRow) -> tuple[bool, bool]:
    """After a balance change: (armed now, crossed). Off, it starts armed when turned on."""
    armed = account.auto_recharge_armed is not False  # None: a row not flushed yet (default on)
    threshold = account.auto_recharge_threshold_paisa
    if (
        not account.auto_recharge_enabled
        or threshold is None
        or not account.auto_recharge_amount_paisa
    ):
        return True, False
    step = auto_recharge_step(
        armed=armed,
        available_paisa=account.paid_paisa + account.promo_paisa,
        reserved_paisa=account.reserved_paisa,
        threshold_paisa=threshold,
    )
    return step.armed, step.crossed


def record_recharge_crossing(session: Session, account: Account) -> Checkout | None:
    """On the locked `account` after a balance change (or turning auto-recharge on): re-arm, or
    record a crossing as a new auto-recharge checkout (returned) and disarm. No new checkout
    while another is still open (unpaid and not expired)."""
    armed, crossed = recharge_step(account)
    if armed != account.auto_recharge_armed:
        account.auto_recharge_armed = armed
    if not crossed:
        return None
    assert account.auto_recharge_amount_paisa
    return record_recharge_checkout(
        session, account.id, account.version, account.auto_recharge_amount_paisa
    )


def record_recharge_checkout(
    session: Session, account_id: str, crossing_version: int, amount_paisa: int
) -> Checkout | None:
    """The checkout of a crossing at `crossing_version` (the account row locked); none while
    another auto-recharge is still open."""
    from ledger.posting import new_id, utcnow  # here: posting imports this module

    moment = utcnow()
    if rows.open_auto_recharge(session, account_id, moment) is not None:
        return None
    key = crossing_key(account_id, crossing_version)
    existing = rows.checkout_by_request_key(session, key)
    if existing is not None:
        return existing
    checkout = Checkout(
        id=new_id("chk"),
        account_id=account_id,
        order_id=None,
        kind=CheckoutKind.AUTO_RECHARGE,
        request_key=key,
        amount_paisa=amount_paisa,
        currency=CURRENCY,
        status=CheckoutStatus.CREATED,
        save_method=False,
        charge_attempted=False,
        expires_at=moment + timedelta(seconds=AUTO_RECHARGE_WINDOW_SECONDS),
    )
    session.add(checkout)
    session.flush()
    return checkout
