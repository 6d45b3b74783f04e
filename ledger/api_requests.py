"""osmAPI (the LLM gateway) shares the balance: authorize before forwarding a request (the
refusal rule, no hold), charge it when done (never refused: the work is done).

Charging is the hot path of an LLM gateway, so it is written once as plain statements
(ledger.repositories.api_charges, driven by ledger.repositories.statements) that run on the
API's async pool or on a Session's own connection: lock the accounts and read what the charges
need in one round trip, price and plan every charge in Python with the ledger's own rules
(domain.rating, domain.balance_rules.plan_debit, ledger.posting.journal_lines), write every row
in a second. Any number of requests over any number of accounts is one transaction; each request
is its own ledger transaction, idempotent on `request_id` with a hash of its body, and records
the crossings `ledger.posting.post` records (low-balance alert outbox, auto-recharge). An account
that needs housekeeping (expired promo, a stale hold) or whose charge crosses its auto-recharge
threshold goes through a Session (`NeedsSession` tells the async caller to do that instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from domain.balance_rules import plan_debit
from domain.channels import Channel, Component
from domain.contracts.accounts import LowBalanceAlert
from domain.ledger_types import REASON_INSUFFICIENT_BALANCE, AuthorizeDecision, BalanceSnapshot
from domain.rating import RateCard, RatingError, UsageTotals, price_usage, validate_usage_event
from ledger import rate_cards
from ledger.alerts import crossing_step
from ledger.api_charge_types import (
    AccountAfter,
    ApiCharge,
    ApiChargeError,
    ApiChargeResult,
    ApiUsage,
    NeedsSession,
)
from ledger.errors import BillingError, Conflict, NotFound, ValidationFailed
from ledger.plain_accounts import AccountRow, PlainAccount
from ledger.posting import (
    fresh_account,
    housekeeping,
    journal_lines,
    margin_rate,
    refused,
    require_account,
    snapshot,
    utcnow,
)
from ledger.recharge_crossings import recharge_step, record_recharge_checkout
from ledger.repositories import api_charges as sql
from ledger.repositories.statements import Row, Steps, run_steps, run_steps_async

MAX_BATCH = 1000
MAX_TOKENS = 10**9


def database_key(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> str:
    """Names the database a connection talks to (the rate card cache is per database)."""
    info = conn.info
    return f"psycopg://{info.host}:{info.port}/{info.dbname}"


def authorization(account: AccountRow, rate_card_version: int) -> AuthorizeDecision:
    """The osmAPI authorization: the refusal rule, no hold."""
    authorized = not refused(account)
    return AuthorizeDecision(
        authorized=authorized,
        reason=None if authorized else REASON_INSUFFICIENT_BALANCE,
        hold_paisa=0,
        available_paisa=account.paid_paisa + account.promo_paisa,
        rate_card_version=rate_card_version,
        margin_rate=str(margin_rate(account)),
        balance=snapshot(account),
    )


def authorize_api_request(
    session: Session, *, account_id: str, now: datetime | None = None
) -> AuthorizeDecision:
    now = now or utcnow()
    account = fresh_account(session, account_id, now)
    return authorization(account, rate_cards.current_rate_card(session, now).version)


def _authorize_steps(account_id: str, now: datetime) -> Steps[AuthorizeDecision]:
    (rows,) = yield [sql.read_account(account_id, now)]
    if not rows:
        raise NotFound(f"account {account_id} not found")
    *columns, needs_housekeeping, card_version = rows[0]
    if needs_housekeeping:
        raise NeedsSession([account_id])
    if card_version is None:
        raise NotFound("no rate card is in force")
    return authorization(PlainAccount(*columns), card_version)


async def authorize_api_request_async(
    conn: psycopg.AsyncConnection[Any], *, account_id: str, now: datetime | None = None
) -> AuthorizeDecision:
    """`authorize_api_request` in one statement on an autocommit connection (a read)."""
    return await run_steps_async(conn, _authorize_steps(account_id, now or utcnow()))


def _validate(item: ApiUsage) -> None:
    if not item.request_id or len(item.request_id) > 200:
        raise ValidationFailed("request_id must be 1 to 200 characters")
    if any("\x00" in text for text in (item.request_id, item.account_id, item.sku)):
        raise ValidationFailed("strings may not contain NUL characters")
    for name, value in (("input_tokens", item.input_tokens), ("output_tokens", item.output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            raise ValidationFailed(f"{name} must be an integer between 0 and {MAX_TOKENS}")


def _replayed(row: Row) -> ApiCharge:
    """The charge of a request_id already in api_requests (sql.charge_context's columns)."""
    request_id, account_id, sku, tokens_in, tokens_out, version, provider, margin, total, tx = row[
        :10
    ]
    return ApiCharge(
        request_id, account_id, sku, tokens_in, tokens_out, version, provider, margin, total, tx,
        replayed=True,
    )  # fmt: skip


@dataclass
class _Writes:
    transactions: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    lots: dict[int, int] = field(default_factory=dict)
    allocations: list[tuple[Any, ...]] = field(default_factory=list)
    requests: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[LowBalanceAlert] = field(default_factory=list)
    recharges: list[tuple[str, int, int]] = field(default_factory=list)  # account, version, paisa


def _post(
    writes: _Writes,
    account: PlainAccount,
    item: ApiUsage,
    digest: str,
    card: RateCard,
    transaction_ids: Iterator[int],
) -> ApiCharge:
    """Price one request and plan its rows (ledger.posting.debit's rules, in memory)."""
    try:
        event = validate_usage_event(
            {
                "event_id": item.request_id,
                "component": Component.LLM.value,
                "sku": item.sku,
                "input_tokens": item.input_tokens,
                "output_tokens": item.output_tokens,
            },
            Channel.CHAT.value,
            card,
        )
        totals = UsageTotals()
        totals.add(event)
        breakdown = price_usage(totals.lines, card, margin_rate(account))
    except RatingError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc
    transaction_id: int | None = None
    total = breakdown.total_paisa
    if total > 0:
        transaction_id = next(transaction_ids)
        promo_lots, paid_lots = account.lots["promo"], account.lots["paid"]
        plan = plan_debit(
            total,
            [(lot[0], lot[1]) for lot in promo_lots if lot[1] > 0],
            [(lot[0], lot[1]) for lot in paid_lots if lot[1] > 0],
        )
        remaining = {lot[0]: lot for lot in (*promo_lots, *paid_lots)}
        for lot_id, take in plan.takes:
            remaining[lot_id][1] -= take
            writes.lots[lot_id] = remaining[lot_id][1]
            writes.allocations.append((transaction_id, lot_id, account.id, "debit", take))
        if plan.overdraft_paisa:
            writes.allocations.append(
                (transaction_id, None, account.id, "overdraft", plan.overdraft_paisa)
            )
        account.paid_paisa -= plan.paid_paisa
        account.promo_paisa -= plan.promo_paisa
        account.version += 1
        if account.promo_paisa < 0:
            raise AssertionError("promo balance would go negative")
        # The crossings ledger.posting.post records: the low-balance alert, auto-recharge.
        account.low_balance_armed, alert = crossing_step(account)
        if alert is not None:
            writes.alerts.append(alert)
        account.auto_recharge_armed, recharge = recharge_step(account)
        if recharge and account.auto_recharge_amount_paisa:
            writes.recharges.append(
                (account.id, account.version, account.auto_recharge_amount_paisa)
            )
        writes.transactions.append(
            (
                transaction_id, account.id, f"api:{item.request_id}", digest, -total,
                -plan.paid_paisa, -plan.promo_paisa, account.paid_paisa, account.promo_paisa,
                account.paid_paisa + account.promo_paisa, item.request_id,
                f"osmAPI request ({item.sku})", {"breakdown": breakdown.__dict__, "sku": item.sku},
            )
        )  # fmt: skip
        contra = [
            ("provider_payable", breakdown.provider_total_paisa),
            ("margin_revenue", breakdown.margin_paisa),
        ]
        writes.entries.extend(
            (transaction_id, account.id, book, amount)
            for book, amount in journal_lines(-plan.paid_paisa, -plan.promo_paisa, contra)
        )
    charge = ApiCharge(
        item.request_id, item.account_id, item.sku, item.input_tokens, item.output_tokens,
        card.version, breakdown.provider_total_paisa, breakdown.margin_paisa, total,
        transaction_id,
    )  # fmt: skip
    writes.requests.append(
        (
            charge.request_id, charge.account_id, charge.sku, charge.input_tokens,
            charge.output_tokens, charge.rate_card_version, charge.provider_total_paisa,
            charge.margin_paisa, charge.total_paisa, charge.transaction_id, digest,
        )
    )  # fmt: skip
    return charge


def _charge_steps(
    items: Sequence[ApiUsage], now: datetime, database: str, *, session: bool
) -> Steps[ApiChargeResult]:
    """`session`: the caller records auto-recharge checkouts after the steps (a Session);
    without one, a crossing raises `NeedsSession` before anything is written."""
    results: list[ApiCharge | ApiChargeError | None] = [None] * len(items)
    valid: list[int] = []
    for index, item in enumerate(items):
        try:
            _validate(item)
            valid.append(index)
        except ValidationFailed as exc:
            results[index] = ApiChargeError(item.request_id, exc)
    if not valid:
        return ApiChargeResult([r for r in results if r is not None], {})
    account_ids = sorted({items[i].account_id for i in valid})
    request_ids = sorted({items[i].request_id for i in valid})
    account_rows, (context,) = yield [
        sql.lock_accounts(account_ids),
        sql.charge_context(account_ids, request_ids, now, len(valid)),
    ]
    request_rows, card_version, stale, lot_rows, month, id_rows = context
    if stale:
        raise NeedsSession(sorted(set(stale)))
    accounts = {row[0]: PlainAccount(*row) for row in account_rows}
    before = {a.id: a.paid_paisa + a.promo_paisa for a in accounts.values()}
    for lot_id, account_id, kind, lot_remaining in lot_rows:
        accounts[account_id].lots[kind].append([lot_id, lot_remaining])
    card: RateCard | None = None
    if card_version is not None:
        card = yield from rate_cards.rate_card_steps(database, card_version)
    existing = {row[0]: row for row in request_rows}
    charged: dict[str, tuple[str, ApiCharge]] = {}  # this batch's requests so far
    transaction_ids = iter(sorted(int(i) for i in id_rows))
    writes = _Writes()
    for index in valid:
        item = items[index]
        digest = item.payload_hash()
        try:
            account = accounts.get(item.account_id)
            if account is None:
                raise NotFound(f"account {item.account_id} not found")
            prior = existing.get(item.request_id)
            earlier = (prior[10], _replayed(prior)) if prior else charged.get(item.request_id)
            if earlier is not None:
                if earlier[0] != digest:
                    raise Conflict(f"request {item.request_id} was charged with a different body")
                results[index] = replace(earlier[1], replayed=True)
                continue
            if card is None:
                raise NotFound("no rate card is in force")
            charge = _post(writes, account, item, digest, card, transaction_ids)
            month[account.id] = month.get(account.id, 0) + charge.total_paisa
            charged[item.request_id] = (digest, charge)
            results[index] = charge
        except BillingError as exc:
            results[index] = ApiChargeError(item.request_id, exc)
    if writes.recharges and not session:
        raise NeedsSession(sorted({account_id for account_id, _, _ in writes.recharges}))
    if writes.requests:
        touched = {row[1] for row in writes.transactions}
        yield [
            sql.post_charges(
                transactions=writes.transactions,
                entries=writes.entries,
                lots=sorted(writes.lots.items()),
                allocations=writes.allocations,
                accounts=[
                    (a.id, a.paid_paisa, a.promo_paisa, a.version, *a.flags())
                    for a in accounts.values()
                    if a.id in touched
                ],
                requests=writes.requests,
                alerts=[(a.account_id, a.dedupe_key, asdict(a)) for a in writes.alerts],
            )
        ]
    return ApiChargeResult(
        items=[r for r in results if r is not None],
        accounts={
            a.id: AccountAfter(snapshot(a), month.get(a.id, 0), before[a.id])
            for a in accounts.values()
        },
        alerts=writes.alerts,
        recharges=writes.recharges,
    )


def charge_api_usage_batch(
    session: Session, items: Sequence[ApiUsage], now: datetime | None = None
) -> ApiChargeResult:
    """Charge finished requests (never refused: the work is done) in the session's transaction.
    Each is idempotent on request_id; the same id with another body is a `Conflict` for that
    item; an unknown account or SKU is an error for that item. Nothing is written for errors."""
    now = now or utcnow()
    session.flush()
    conn: psycopg.Connection[Any] = session.connection().connection.driver_connection  # type: ignore[assignment]
    database = database_key(conn)
    try:
        result = run_steps(conn, _charge_steps(items, now, database, session=True))
    except NeedsSession as needs:  # housekeeping due
        for account_id in needs.account_ids:  # sorted: the one lock order
            housekeeping(session, require_account(session, account_id), now)
        session.flush()
        result = run_steps(conn, _charge_steps(items, now, database, session=True))
    session.expire_all()  # the rows changed under the ORM's feet
    for account_id, version, amount in result.recharges:
        record_recharge_checkout(session, account_id, version, amount)
    return result


async def charge_api_usage_async(
    conn: psycopg.AsyncConnection[Any], items: Sequence[ApiUsage], now: datetime | None = None
) -> ApiChargeResult:
    """`charge_api_usage_batch` on an async connection in a transaction (the API's pool);
    raises `NeedsSession` when an account must go through the Session path first."""
    steps = _charge_steps(items, now or utcnow(), database_key(conn), session=False)
    return await run_steps_async(conn, steps)


def charge_api_usage(
    session: Session,
    *,
    request_id: str,
    account_id: str,
    sku: str,
    input_tokens: int,
    output_tokens: int,
    now: datetime | None = None,
) -> tuple[ApiCharge, BalanceSnapshot]:
    """Charge one finished request; its error (if any) is raised."""
    item = ApiUsage(request_id, account_id, sku, input_tokens, output_tokens)
    return single(charge_api_usage_batch(session, [item], now))


def single(result: ApiChargeResult) -> tuple[ApiCharge, BalanceSnapshot]:
    """The one item of a one-request charge, or its error raised."""
    (outcome,) = result.items
    if isinstance(outcome, ApiChargeError):
        raise outcome.error
    return outcome, result.accounts[outcome.account_id].balance
