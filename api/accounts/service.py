from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from api.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountOut,
    AccountPatch,
    AutoRechargeOut,
    TopUpOut,
)
from api.keys.service import create_key
from api.schemas import BalanceOut, TransactionOut
from db.models import Account, LedgerTransaction
from domain.history import TransactionFilter
from domain.ledger_types import BalanceSnapshot
from domain.rating import DEFAULT_MARGIN_RATE
from ledger import accounts, auto_recharge, balances
from ledger.policy import LedgerPolicy
from ledger.posting import snapshot


def format_rate(rate: Decimal) -> str:
    """0.3000 -> "0.30", 0.1250 -> "0.125": at least two decimals, no trailing zeros after."""
    normalized = rate.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normalized = rate.quantize(Decimal("0.01"))
    return str(normalized)


def account_out(account: Account) -> AccountOut:
    rate = account.margin_rate if account.margin_rate is not None else DEFAULT_MARGIN_RATE
    return AccountOut(
        id=account.id,
        name=account.name,
        email=account.email,
        margin_rate=format_rate(rate),
        min_balance_paisa=account.min_balance_paisa,
        alert_threshold_paisa=account.alert_threshold_paisa,
        created_at=account.created_at,
        auto_recharge=AutoRechargeOut(
            enabled=account.auto_recharge_enabled,
            threshold_paisa=account.auto_recharge_threshold_paisa,
            amount_paisa=account.auto_recharge_amount_paisa,
            consecutive_failures=account.auto_recharge_failures,
            has_saved_method=account.auto_recharge_method_id is not None,
        ),
    )


def create_account(
    session: Session, policy: LedgerPolicy, body: AccountCreate
) -> tuple[AccountCreated, BalanceSnapshot]:
    account, balance = accounts.create_account(
        session,
        policy,
        name=body.name,
        email=body.email,
        margin_rate=str(body.margin_rate) if body.margin_rate is not None else None,
        alert_threshold_paisa=body.alert_threshold_paisa,
    )
    session.flush()
    session.refresh(account)
    key = create_key(session, "customer", account.id)
    created = AccountCreated(
        account=account_out(account),
        balance=BalanceOut.of(balances.summary_of(session, balance)),
        api_key=key,
    )
    return created, balance


# What a customer key may change on its own account (the rest of AccountPatch is admin's).
CUSTOMER_SETTINGS = frozenset({"alert_threshold_paisa", "auto_recharge"})


def refused_settings(body: AccountPatch, *, is_admin: bool) -> str | None:
    """The fields of `body` this caller may not change, comma-separated (None: all allowed)."""
    refused = set() if is_admin else body.model_fields_set - CUSTOMER_SETTINGS
    return ", ".join(sorted(refused)) or None


def transactions_page(
    session: Session,
    account_id: str,
    cursor: str | None,
    limit: int,
    filters: TransactionFilter | None = None,
) -> tuple[list[LedgerTransaction], str | None]:
    """One page of the history, newest first, and the cursor of the next (older) page."""
    before = int(cursor) if cursor else None
    rows = balances.list_transactions(
        session, account_id, before_id=before, limit=limit + 1, filters=filters
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1].id) if more and rows else None


def get_account(session: Session, account_id: str) -> AccountOut:
    return account_out(accounts.get_account(session, account_id))


def top_up(
    session: Session, account_id: str, amount: int, reference: str
) -> tuple[TopUpOut, BalanceSnapshot]:
    transaction, balance = accounts.top_up(
        session, account_id=account_id, amount_paisa=amount, payment_reference=reference
    )
    session.flush()
    session.refresh(transaction)
    out = TopUpOut(
        transaction=TransactionOut.model_validate(transaction),
        balance=BalanceOut.of(balances.summary_of(session, balance)),
    )
    return out, balance


def update_account(
    session: Session,
    account_id: str,
    body: AccountPatch,
    *,
    checkout_bounds: tuple[int, int],
) -> tuple[AccountOut, BalanceSnapshot]:
    """The fields sent: the account's settings through `ledger.accounts.update_account`
    (validated again there; a new alert threshold may be a crossing), auto-recharge through
    `ledger.auto_recharge.configure` (contract §6). The snapshot is for
    `api.notify.balance_changed`."""
    changes: dict[str, object] = body.model_dump(exclude_unset=True, exclude={"auto_recharge"})
    if changes.get("margin_rate") is not None:
        changes["margin_rate"] = str(changes["margin_rate"])
    account, _ = accounts.update_account(session, account_id, changes)
    if body.auto_recharge is not None:
        wanted = body.auto_recharge
        auto_recharge.configure(
            session,
            account_id,
            enabled=wanted.enabled,
            threshold_paisa=wanted.threshold_paisa,
            amount_paisa=wanted.amount_paisa,
            min_amount_paisa=checkout_bounds[0],
            max_amount_paisa=checkout_bounds[1],
        )
    session.flush()
    session.refresh(account)
    return account_out(account), snapshot(account)
