"""refund parts: where each refund's money goes back to

Revision ID: 0005
Revises: 0008

- `refund_parts`: one row per part of a refund (a gateway refund against one captured payment,
  or a payout to the customer's bank account), written with the refund's debit; its idempotency
  key at the gateway is unique;
- `accounts.payout_fund_account_id`: the customer's RazorpayX fund account (bank account) for
  payout parts, set by support.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.add_column("accounts", sa.Column("payout_fund_account_id", sa.Text()))
    op.create_table(
        "refund_parts",
        sa.Column("refund_id", sa.String(64), sa.ForeignKey("refunds.id"), primary_key=True),
        sa.Column("part_no", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payment_id", sa.Text(), sa.ForeignKey("gateway_payments.id")),
        sa.Column("amount_paisa", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("gateway_reference", sa.Text()),
        sa.Column("failure_reason", sa.Text()),
        sa.Column(
            "reversal_transaction_id", sa.BigInteger(), sa.ForeignKey("ledger_transactions.id")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("amount_paisa >= 100", name="refund_part_at_least_one_rupee"),
        sa.CheckConstraint("kind IN ('gateway', 'payout')", name="refund_part_kind"),
        sa.CheckConstraint(
            "status IN ('pending', 'processed', 'failed')", name="refund_part_status"
        ),
        sa.CheckConstraint(
            "(kind = 'gateway') = (payment_id IS NOT NULL)", name="refund_part_payment_iff_gateway"
        ),
    )
    op.create_index("ix_refund_parts_payment", "refund_parts", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_refund_parts_payment", table_name="refund_parts")
    op.drop_table("refund_parts")
    op.drop_column("accounts", "payout_fund_account_id")
