"""alert outbox, email leases, idempotency pruning

Revision ID: 0003
Revises: 0001

- `accounts.low_balance_armed`: the low-balance alert's arming, kept with the balance (armed now
  when the balance is at or above the account's threshold);
- `alert_outbox`: one row per crossing, written with the balance change that crossed;
- `email_log.message`, `attempts`, `claimed_at`: a send left `sending` past its lease is sent
  again from the stored message (at least once after a crash);
- an index for pruning `idempotency_records` by age.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("low_balance_armed", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.execute(
        "UPDATE accounts SET low_balance_armed = "
        "(paid_paisa + promo_paisa >= COALESCE(alert_threshold_paisa, min_balance_paisa))"
    )
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index(
        "ix_alert_outbox_undelivered",
        "alert_outbox",
        ["account_id"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.add_column(
        "email_log", sa.Column("message", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "email_log", sa.Column("attempts", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "email_log",
        sa.Column(
            "claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.execute("UPDATE email_log SET claimed_at = created_at")
    op.create_index(
        "ix_email_log_sending",
        "email_log",
        ["claimed_at"],
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_index("ix_idempotency_records_created", "idempotency_records", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_records_created", table_name="idempotency_records")
    op.drop_index("ix_email_log_sending", table_name="email_log")
    op.drop_column("email_log", "claimed_at")
    op.drop_column("email_log", "attempts")
    op.drop_column("email_log", "message")
    op.drop_index("ix_alert_outbox_undelivered", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_column("accounts", "low_balance_armed")
