"""month usage counter: account_month_usage, kept by a trigger on ledger_transactions

Revision ID: 0008
Revises: 0006

"This month's usage" (contract §2) was a sum over the account's charges of the month, read on
every balance answer, so an osmAPI charge on a busy account cost more the more it had been used.
`account_month_usage` keeps that sum per account and calendar month (Asia/Kolkata), maintained by
statement-level triggers on `ledger_transactions` (inserts, updates, deletes; whichever code path
posts), so a balance answer reads one row. The charge kinds counted are
`ledger.repositories.journal.CHARGE_KINDS`; the invariant checker compares the two.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHARGE_KINDS = "('call_charge', 'api_charge')"
MONTH = "date_trunc('month', {t}.created_at AT TIME ZONE 'Asia/Kolkata')::date"


def _deltas(table: str, sign: str) -> str:
    return (
        f"SELECT {table}.account_id, {MONTH.format(t=table)} AS month, "
        f"{sign}{table}.amount_paisa AS delta FROM {table} WHERE {table}.kind IN {CHARGE_KINDS}"
    )


def upgrade() -> None:
    op.create_table(
        "account_month_usage",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("charged_paisa", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "month"),
    )
    upsert = """
        INSERT INTO account_month_usage (account_id, month, charged_paisa)
        SELECT account_id, month, SUM(delta) FROM ({rows}) d GROUP BY account_id, month
        ON CONFLICT (account_id, month)
        DO UPDATE SET charged_paisa = account_month_usage.charged_paisa + EXCLUDED.charged_paisa;
    """
    # Charges are debits (negative amounts): a new row adds -amount, a removed one adds amount.
    op.execute(
        f"""
        CREATE FUNCTION account_month_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {upsert.format(rows=_deltas("new_rows", "-"))}
            ELSIF TG_OP = 'UPDATE' THEN
                {upsert.format(rows=_deltas("new_rows", "-") + " UNION ALL " + _deltas("old_rows", ""))}
            ELSE
                {upsert.format(rows=_deltas("old_rows", ""))}
            END IF;
            RETURN NULL;
        END $$
        """
    )
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER ledger_tx_month_usage_{event.lower()} AFTER {event} "
            f"ON ledger_transactions REFERENCING {tables} "
            "FOR EACH STATEMENT EXECUTE FUNCTION account_month_usage_track()"
        )
    op.execute(
        f"""
        INSERT INTO account_month_usage (account_id, month, charged_paisa)
        SELECT account_id, {MONTH.format(t="t")}, -SUM(amount_paisa)
        FROM ledger_transactions t WHERE kind IN {CHARGE_KINDS}
        GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER ledger_tx_month_usage_{event} ON ledger_transactions")
    op.execute("DROP FUNCTION account_month_usage_track()")
    op.drop_table("account_month_usage")
