"""checkouts, gateway payments and events, saved payment methods, auto-recharge settings

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "payment_methods",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False, unique=True),
        sa.Column("method", sa.String(32)),
        sa.Column("source_payment_id", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    )
    op.create_index("ix_payment_methods_account_id", "payment_methods", ["account_id"])

    op.add_column(
        "accounts",
        sa.Column("auto_recharge_enabled", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column("accounts", sa.Column("auto_recharge_threshold_paisa", sa.BigInteger()))
    op.add_column("accounts", sa.Column("auto_recharge_amount_paisa", sa.BigInteger()))
    op.add_column(
        "accounts",
        sa.Column("auto_recharge_failures", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "accounts",
        sa.Column(
            "auto_recharge_method_id", sa.String(64), sa.ForeignKey("payment_methods.id")
        ),
    )
    op.add_column(
        "accounts",
        sa.Column("auto_recharge_armed", sa.Boolean(), server_default="true", nullable=False),
    )
    op.create_check_constraint(
        "auto_recharge_needs_settings",
        "accounts",
        "NOT auto_recharge_enabled OR (auto_recharge_threshold_paisa IS NOT NULL"
        " AND auto_recharge_amount_paisa > 0 AND auto_recharge_method_id IS NOT NULL)",
    )

    op.create_table(
        "checkouts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("order_id", sa.String(64), unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_key", sa.Text(), unique=True),
        sa.Column("amount_paisa", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("save_method", sa.Boolean(), nullable=False),
        sa.Column("payment_id", sa.Text()),
        sa.Column("failure_reason", sa.Text()),
        sa.Column("charge_attempted", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("amount_paisa > 0", name="checkout_amount_positive"),
        sa.CheckConstraint(
            "status IN ('created', 'paid', 'failed', 'expired')", name="checkout_status"
        ),
        sa.CheckConstraint("kind IN ('customer', 'auto_recharge')", name="checkout_kind"),
    )
    op.create_index("ix_checkouts_account_created", "checkouts", ["account_id", "created_at"])

    op.create_table(
        "gateway_payments",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("checkout_id", sa.String(64), sa.ForeignKey("checkouts.id"), nullable=False),
        sa.Column("amount_paisa", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("method", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.Text()),
        sa.Column("token_id", sa.Text()),
        sa.Column("error_reason", sa.Text()),
        sa.Column("captured_at", sa.DateTime(timezone=True)),
        sa.Column("refunded_paisa", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "topup_transaction_id", sa.BigInteger(), sa.ForeignKey("ledger_transactions.id")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("amount_paisa > 0", name="gateway_payment_amount_positive"),
        sa.CheckConstraint(
            "refunded_paisa >= 0 AND refunded_paisa <= amount_paisa",
            name="gateway_payment_refunded_within_amount",
        ),
    )
    op.create_index("ix_gateway_payments_order_id", "gateway_payments", ["order_id"])
    op.create_index("ix_gateway_payments_checkout_id", "gateway_payments", ["checkout_id"])
    op.create_index(
        "ix_gateway_payments_account_captured", "gateway_payments", ["account_id", "captured_at"]
    )

    op.create_table(
        "gateway_events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.Text(), nullable=False, unique=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.Text()),
        sa.Column("order_id", sa.String(64)),
        sa.Column("refund_id", sa.Text()),
        sa.Column("account_id", sa.String(64)),
        sa.Column("amount_paisa", sa.BigInteger()),
        sa.Column("currency", sa.String(8)),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("signature_verified", sa.Boolean(), nullable=False),
        sa.Column("deliveries", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disposition", sa.String(32)),
        sa.Column("detail", sa.Text()),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('received', 'processed')", name="gateway_event_status"),
    )
    op.create_index("ix_gateway_events_payment_id", "gateway_events", ["payment_id"])
    op.create_index("ix_gateway_events_order_id", "gateway_events", ["order_id"])
    op.create_index("ix_gateway_events_disposition", "gateway_events", ["disposition", "id"])


def downgrade() -> None:
    op.drop_table("gateway_events")
    op.drop_table("gateway_payments")
    op.drop_table("checkouts")
    op.drop_constraint("auto_recharge_needs_settings", "accounts", type_="check")
    for column in (
        "auto_recharge_armed",
        "auto_recharge_method_id",
        "auto_recharge_failures",
        "auto_recharge_amount_paisa",
        "auto_recharge_threshold_paisa",
        "auto_recharge_enabled",
    ):
        op.drop_column("accounts", column)
    op.drop_table("payment_methods")
