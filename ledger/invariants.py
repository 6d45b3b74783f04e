"""Ledger invariant checker, for operators (`python -m ledger.invariants`, `make check-ledger`)
and for tests. Every rule is one set-based SQL query, so a full scan stays cheap.

`check_ledger(session)` returns the violations found (empty = the books are consistent);
`account_ids` restricts the scan to some accounts (tests use it on a shared database).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.repositories.journal import CHARGE_KINDS

CUSTOMER_BOOKS = ("customer_paid", "customer_promo")
_CHARGE_KINDS_SQL = "(" + ", ".join(f"'{kind}'" for kind in CHARGE_KINDS) + ")"


@dataclass(frozen=True)
class Violation:
    account_id: str | None
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] account={self.account_id}: {self.detail}"


# Each rule: (name, SQL returning rows (account_id, detail)). `:ids` is NULL for all accounts.
# `{acc}` is replaced by the filter on the query's account column.
_RULES: list[tuple[str, str]] = [
    (
        "journal_balanced",
        """
        SELECT t.account_id, 'transaction ' || t.id || ' entries sum to ' || SUM(j.amount_paisa)
        FROM ledger_transactions t JOIN journal_entries j ON j.transaction_id = t.id
        WHERE {acc:t.account_id}
        GROUP BY t.id, t.account_id HAVING SUM(j.amount_paisa) <> 0
        """,
    ),
    (
        "journal_matches_transaction",
        """
        SELECT t.account_id, 'transaction ' || t.id || ' deltas paid ' || t.paid_delta_paisa
               || ' promo ' || t.promo_delta_paisa || ' but customer entries paid '
               || COALESCE(e.paid, 0) || ' promo ' || COALESCE(e.promo, 0)
               || ', amount ' || t.amount_paisa
        FROM ledger_transactions t
        LEFT JOIN (
            SELECT transaction_id,
                   SUM(amount_paisa) FILTER (WHERE book = 'customer_paid') AS paid,
                   SUM(amount_paisa) FILTER (WHERE book = 'customer_promo') AS promo
            FROM journal_entries GROUP BY transaction_id
        ) e ON e.transaction_id = t.id
        WHERE {acc:t.account_id}
          AND (COALESCE(e.paid, 0) <> t.paid_delta_paisa
               OR COALESCE(e.promo, 0) <> t.promo_delta_paisa
               OR t.amount_paisa <> t.paid_delta_paisa + t.promo_delta_paisa)
        """,
    ),
    (
        "journal_equals_balance",
        """
        SELECT a.id, 'customer_paid entries ' || COALESCE(j.paid, 0) || ' vs paid '
               || a.paid_paisa || '; customer_promo entries ' || COALESCE(j.promo, 0)
               || ' vs promo ' || a.promo_paisa
        FROM accounts a
        LEFT JOIN (
            SELECT account_id,
                   SUM(amount_paisa) FILTER (WHERE book = 'customer_paid') AS paid,
                   SUM(amount_paisa) FILTER (WHERE book = 'customer_promo') AS promo
            FROM journal_entries GROUP BY account_id
        ) j ON j.account_id = a.id
        WHERE {acc:a.id}
          AND (COALESCE(j.paid, 0) <> a.paid_paisa OR COALESCE(j.promo, 0) <> a.promo_paisa)
        """,
    ),
    (
        "transactions_equal_balance",
        """
        SELECT a.id, 'transactions sum to ' || COALESCE(t.total, 0) || ' (paid '
               || COALESCE(t.paid, 0) || ', promo ' || COALESCE(t.promo, 0)
               || ') but balance is ' || (a.paid_paisa + a.promo_paisa)
        FROM accounts a
        LEFT JOIN (
            SELECT account_id, SUM(amount_paisa) AS total, SUM(paid_delta_paisa) AS paid,
                   SUM(promo_delta_paisa) AS promo
            FROM ledger_transactions GROUP BY account_id
        ) t ON t.account_id = a.id
        WHERE {acc:a.id}
          AND (COALESCE(t.total, 0) <> a.paid_paisa + a.promo_paisa
               OR COALESCE(t.paid, 0) <> a.paid_paisa OR COALESCE(t.promo, 0) <> a.promo_paisa)
        """,
    ),
    (
        "balance_after_chain",
        """
        SELECT account_id, 'transaction ' || id || ' balance_after ' || balance_after
               || ' (paid ' || paid_balance_after || ', promo ' || promo_balance_after
               || ') does not follow from the previous one plus ' || amount_paisa
        FROM (
            SELECT t.*,
                   COALESCE(SUM(amount_paisa) OVER w, 0) AS run_total,
                   COALESCE(SUM(paid_delta_paisa) OVER w, 0) AS run_paid,
                   COALESCE(SUM(promo_delta_paisa) OVER w, 0) AS run_promo
            FROM ledger_transactions t
            WHERE {acc:t.account_id}
            WINDOW w AS (PARTITION BY account_id ORDER BY id)
        ) x
        WHERE balance_after <> run_total OR paid_balance_after <> run_paid
           OR promo_balance_after <> run_promo
           OR balance_after <> paid_balance_after + promo_balance_after
        """,
    ),
    (
        "last_balance_after",
        """
        SELECT a.id, 'latest balance_after ' || t.balance_after || ' but balance is '
               || (a.paid_paisa + a.promo_paisa)
        FROM accounts a
        JOIN LATERAL (
            SELECT balance_after FROM ledger_transactions
            WHERE account_id = a.id ORDER BY id DESC LIMIT 1
        ) t ON TRUE
        WHERE {acc:a.id} AND t.balance_after <> a.paid_paisa + a.promo_paisa
        """,
    ),
    (
        "promo_non_negative",
        """
        SELECT id, 'promo balance ' || promo_paisa FROM accounts
        WHERE {acc:id} AND promo_paisa < 0
        UNION ALL
        SELECT account_id, 'transaction ' || id || ' left promo at ' || promo_balance_after
        FROM ledger_transactions WHERE {acc:account_id} AND promo_balance_after < 0
        """,
    ),
    (
        "reserved_equals_active_holds",
        """
        SELECT a.id, 'reserved ' || a.reserved_paisa || ' but active holds sum to '
               || COALESCE(h.total, 0)
        FROM accounts a
        LEFT JOIN (
            SELECT account_id, SUM(amount_paisa) AS total FROM holds
            WHERE status = 'active' GROUP BY account_id
        ) h ON h.account_id = a.id
        WHERE {acc:a.id} AND a.reserved_paisa <> COALESCE(h.total, 0)
        """,
    ),
    (
        "promo_lots_equal_promo",
        """
        SELECT a.id, 'promo lots hold ' || COALESCE(l.total, 0) || ' but promo is '
               || a.promo_paisa
        FROM accounts a
        LEFT JOIN (
            SELECT account_id, SUM(remaining_paisa) AS total FROM credit_lots
            WHERE kind = 'promo' GROUP BY account_id
        ) l ON l.account_id = a.id
        WHERE {acc:a.id} AND a.promo_paisa <> COALESCE(l.total, 0)
        """,
    ),
    (
        "paid_lots_equal_paid",
        """
        SELECT a.id, 'paid lots hold ' || COALESCE(l.total, 0) || ' but max(paid, 0) is '
               || GREATEST(a.paid_paisa, 0)
        FROM accounts a
        LEFT JOIN (
            SELECT account_id, SUM(remaining_paisa) AS total FROM credit_lots
            WHERE kind = 'paid' GROUP BY account_id
        ) l ON l.account_id = a.id
        WHERE {acc:a.id} AND GREATEST(a.paid_paisa, 0) <> COALESCE(l.total, 0)
        """,
    ),
    (
        "overdraft_equals_negative_paid",
        """
        SELECT a.id, 'unsettled overdraft ' || COALESCE(o.total, 0) || ' but paid is '
               || a.paid_paisa
        FROM accounts a
        LEFT JOIN (
            SELECT account_id,
                   SUM(CASE kind WHEN 'overdraft' THEN amount_paisa ELSE -amount_paisa END)
                       AS total
            FROM lot_allocations WHERE kind IN ('overdraft', 'settlement')
            GROUP BY account_id
        ) o ON o.account_id = a.id
        WHERE {acc:a.id} AND COALESCE(o.total, 0) <> GREATEST(-a.paid_paisa, 0)
        """,
    ),
    (
        "allocations_equal_debit",
        """
        SELECT t.account_id, 'debit transaction ' || t.id || ' of ' || (-t.amount_paisa)
               || ' has allocations summing to ' || COALESCE(al.total, 0)
               || ' (promo lots ' || COALESCE(al.promo, 0) || ' vs promo delta '
               || (-t.promo_delta_paisa) || ')'
        FROM ledger_transactions t
        LEFT JOIN (
            SELECT x.transaction_id, SUM(x.amount_paisa) AS total,
                   SUM(x.amount_paisa) FILTER (WHERE l.kind = 'promo') AS promo
            FROM lot_allocations x LEFT JOIN credit_lots l ON l.id = x.lot_id
            WHERE x.kind IN ('debit', 'overdraft') GROUP BY x.transaction_id
        ) al ON al.transaction_id = t.id
        WHERE {acc:t.account_id} AND t.amount_paisa < 0
          AND (COALESCE(al.total, 0) <> -t.amount_paisa
               OR COALESCE(al.promo, 0) <> -t.promo_delta_paisa)
        """,
    ),
    (
        "debit_allocations_only_on_debits",
        """
        SELECT x.account_id, 'allocation ' || x.id || ' (' || x.kind
               || ') belongs to a transaction of ' || t.amount_paisa
        FROM lot_allocations x JOIN ledger_transactions t ON t.id = x.transaction_id
        WHERE {acc:x.account_id}
          AND ((x.kind IN ('debit', 'overdraft') AND t.amount_paisa >= 0)
               OR (x.kind = 'settlement' AND t.amount_paisa <= 0))
        """,
    ),
    (
        "lot_consumption",
        """
        SELECT l.account_id, l.kind || ' lot ' || l.id || ': original ' || l.original_paisa
               || ' - remaining ' || l.remaining_paisa || ' but allocations sum to '
               || COALESCE(x.total, 0)
        FROM credit_lots l
        LEFT JOIN (
            SELECT lot_id, SUM(amount_paisa) AS total FROM lot_allocations
            WHERE lot_id IS NOT NULL GROUP BY lot_id
        ) x ON x.lot_id = l.id
        WHERE {acc:l.account_id}
          AND (l.original_paisa - l.remaining_paisa <> COALESCE(x.total, 0)
               OR l.remaining_paisa < 0 OR l.remaining_paisa > l.original_paisa)
        """,
    ),
    (
        # The charge at finalization plus any late-usage adjustments add up to the call's
        # breakdown (contract §3): at most one call_charge, and it is the call's transaction.
        "charged_call_adds_up",
        """
        SELECT c.account_id, 'call ' || c.call_id || ' (' || c.outcome || ', total '
               || c.total_paisa || ') has ' || COUNT(t.id) FILTER (WHERE t.kind = 'call_charge')
               || ' call_charge and ' || COUNT(t.id) FILTER (WHERE t.kind = 'call_adjustment')
               || ' call_adjustment transactions'
               || COALESCE(', amounts ' || string_agg(t.amount_paisa::text, ','), '')
        FROM calls c
        LEFT JOIN ledger_transactions t
               ON t.kind IN ('call_charge', 'call_adjustment') AND t.reference = c.call_id
              AND t.account_id = c.account_id
        WHERE {acc:c.account_id} AND c.status = 'finalized'
          AND c.outcome IN ('completed', 'voicemail', 'abandoned') AND c.total_paisa > 0
        GROUP BY c.call_id, c.account_id, c.outcome, c.total_paisa, c.transaction_id
        HAVING COUNT(t.id) FILTER (WHERE t.kind = 'call_charge') > 1
            OR COALESCE(SUM(t.amount_paisa), 0) <> -c.total_paisa
            OR MIN(t.id) FILTER (WHERE t.kind = 'call_charge')
               IS DISTINCT FROM c.transaction_id
        """,
    ),
    (
        "uncharged_call_has_no_charge",
        """
        SELECT c.account_id, 'call ' || c.call_id || ' (' || COALESCE(c.outcome, c.status)
               || ', total ' || COALESCE(c.total_paisa, 0) || ') has a ' || t.kind
               || ' transaction'
        FROM calls c
        JOIN ledger_transactions t
          ON t.kind IN ('call_charge', 'call_adjustment') AND t.reference = c.call_id
         AND t.account_id = c.account_id
        WHERE {acc:c.account_id}
          AND NOT (c.status = 'finalized' AND c.outcome IN ('completed', 'voicemail', 'abandoned')
                   AND c.total_paisa > 0)
        """,
    ),
    (
        "finalized_call_has_no_active_hold",
        """
        SELECT c.account_id, 'finalized call ' || c.call_id || ' (' || c.outcome
               || ') still holds ' || h.amount_paisa
        FROM calls c JOIN holds h ON h.reference = 'call:' || c.call_id
        WHERE {acc:c.account_id} AND c.status = 'finalized' AND h.status = 'active'
        """,
    ),
    (
        "call_hold_is_settled_once",
        """
        SELECT c.account_id, 'finalized call ' || c.call_id || ' (' || c.outcome
               || ') ended with hold status ' || h.status
        FROM calls c JOIN holds h ON h.reference = 'call:' || c.call_id
        WHERE {acc:c.account_id} AND c.status = 'finalized'
          AND NOT (h.status = 'expired'
                   OR (h.status = 'captured'
                       AND c.outcome IN ('completed', 'voicemail', 'abandoned'))
                   OR (h.status = 'voided'
                       AND c.outcome NOT IN ('completed', 'voicemail', 'abandoned')))
        """,
    ),
    (
        "month_usage_counter_equals_charges",
        """
        SELECT COALESCE(c.account_id, u.account_id), 'month ' || COALESCE(c.month, u.month)
               || ': charges ' || COALESCE(c.paisa, 0) || ' but counter '
               || COALESCE(u.charged_paisa, 0)
        FROM (
            SELECT account_id,
                   date_trunc('month', created_at AT TIME ZONE 'Asia/Kolkata')::date AS month,
                   -SUM(amount_paisa) AS paisa
            FROM ledger_transactions
            WHERE {acc:account_id} AND kind IN """
        + _CHARGE_KINDS_SQL
        + """
            GROUP BY 1, 2
        ) c
        FULL JOIN (SELECT * FROM account_month_usage WHERE {acc:account_id}) u
            ON u.account_id = c.account_id AND u.month = c.month
        WHERE COALESCE(c.paisa, 0) <> COALESCE(u.charged_paisa, 0)
        """,
    ),
]


def _render(sql: str, filtered: bool) -> str:
    """Replace each `{acc:<column>}` with a filter on that column (or TRUE)."""
    out = []
    rest = sql
    while "{acc:" in rest:
        head, _, tail = rest.partition("{acc:")
        column, _, rest = tail.partition("}")
        out.append(head)
        out.append(f"{column} = ANY(:ids)" if filtered else "TRUE")
    out.append(rest)
    return "".join(out)


RULE_NAMES: tuple[str, ...] = tuple(name for name, _ in _RULES)


def check_ledger(session: Session, account_ids: Sequence[str] | None = None) -> list[Violation]:
    """Check every ledger invariant; returns the violations (empty when the books agree)."""
    filtered = account_ids is not None
    params = {"ids": list(account_ids)} if account_ids is not None else {}
    violations: list[Violation] = []
    for name, sql in _RULES:
        for account_id, detail in session.execute(text(_render(sql, filtered)), params):
            violations.append(Violation(account_id=account_id, rule=name, detail=str(detail)))
    return violations


def _database_url() -> str:
    """DATABASE_URL is required: production never starts a database of its own (`make
    check-ledger` runs `dev.check_ledger`, which finds the dev stack's embedded one)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SystemExit("DATABASE_URL is required (make check-ledger finds the dev stack's)")
    return url


def main(argv: Sequence[str] | None = None, database_url: str | None = None) -> int:
    """`python -m ledger.invariants [account_id ...]`: print violations, exit 1 if any."""
    from sqlalchemy.exc import DBAPIError

    from db.session import get_sessionmaker

    args = list(sys.argv[1:] if argv is None else argv)
    url = database_url or _database_url()
    accounts = args or None
    try:
        with get_sessionmaker(url)() as session:
            violations = check_ledger(session, accounts)
    except DBAPIError as exc:
        print(f"cannot check the ledger at {url}: {exc.orig}", file=sys.stderr)
        return 2
    for violation in violations:
        print(violation)
    scope = f"{len(accounts)} account(s)" if accounts else "all accounts"
    if violations:
        print(f"{len(violations)} ledger invariant violation(s) in {scope}", file=sys.stderr)
        return 1
    print(f"ledger OK: {len(RULE_NAMES)} invariants hold for {scope}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
