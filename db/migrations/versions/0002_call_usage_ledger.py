"""call usage in the ledger: usage events (unique per call and event id), the idle active calls index

Revision ID: 0002
Revises: 0005 (numbered 0002 as assigned; it landed after 0003-0008)

A call's usage events are checkpointed to `call_usage_events` while it runs (its hold follows
the running cost), so the final charge, late usage and the orphan sweep price from the ledger.
Late usage is charged as `call_adjustment` transactions, a charge kind: the month-usage trigger
of 0008 counts them from now on (none exist before this revision, so nothing to backfill).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


MONTH = "date_trunc('month', {t}.created_at AT TIME ZONE 'Asia/Kolkata')::date"


def _month_usage_function(kinds: str) -> str:
    """0008's `account_month_usage_track`, counting the charge kinds `kinds` (an SQL list)."""

    def deltas(table: str, sign: str) -> str:
        return (
            f"SELECT {table}.account_id, {MONTH.format(t=table)} AS month, "
            f"{sign}{table}.amount_paisa AS delta FROM {table} WHERE {table}.kind IN {kinds}"
        )

    upsert = """
        INSERT INTO account_month_usage (account_id, month, charged_paisa)
        SELECT account_id, month, SUM(delta) FROM ({rows}) d GROUP BY account_id, month
        ON CONFLICT (account_id, month)
        DO UPDATE SET charged_paisa = account_month_usage.charged_paisa + EXCLUDED.charged_paisa;
    """
    both = deltas("new_rows", "-") + " UNION ALL " + deltas("old_rows", "")
    return f"""
        CREATE OR REPLACE FUNCTION account_month_usage_track() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {upsert.format(rows=deltas("new_rows", "-"))}
            ELSIF TG_OP = 'UPDATE' THEN
                {upsert.format(rows=both)}
            ELSE
                {upsert.format(rows=deltas("old_rows", ""))}
            END IF;
            RETURN NULL;
        END $$
    """


def upgrade() -> None:
    op.execute(_month_usage_function("('call_charge', 'call_adjustment', 'api_charge')"))
    op.create_table(
        "call_usage_events",
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("component", sa.String(length=8), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("quantities", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("occurred_at", sa.Text(), nullable=True),
        sa.Column("batch", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("phase IN ('live', 'late')", name="usage_event_phase"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"]),
        sa.PrimaryKeyConstraint("call_id", "event_id"),
    )
    op.create_index(
        "ix_calls_active_idle",
        "calls",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.execute(_month_usage_function("('call_charge', 'api_charge')"))
    op.drop_index(
        "ix_calls_active_idle", table_name="calls", postgresql_where=sa.text("status = 'active'")
    )
    op.drop_table("call_usage_events")
