"""call usage in the ledger: usage events (unique per call and event id), the idle active calls index

Revision ID: 0002
Revises: 0004 (numbered 0002 as assigned; it landed after 0003 and 0004)

A call's usage events are checkpointed to `call_usage_events` while it runs (its hold follows
the running cost), so the final charge, late usage and the orphan sweep price from the ledger.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
    op.drop_index(
        "ix_calls_active_idle", table_name="calls", postgresql_where=sa.text("status = 'active'")
    )
    op.drop_table("call_usage_events")
