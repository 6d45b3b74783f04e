"""history filters and live changes

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30 10:00:00

- An index for an account's transactions by time (the `from`/`to` filters, statements,
  CSV exports).
- Change notifications for the dashboard's live stream: a row trigger on `accounts` and
  `calls` sends `NOTIFY billing_live, 'a:<account_id>'`, one on a revoked `api_keys` row
  `'k:<key_id>'`. PostgreSQL delivers them at commit and folds identical payloads of one
  transaction into one, so a call's finalization (call row + account row) is one notification.
  The API listens once per process (api/dashboard/live.py) and fans out to the open pages.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION billing_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'api_keys' THEN
        PERFORM pg_notify('billing_live', 'k:' || NEW.id);
    ELSIF TG_TABLE_NAME = 'accounts' THEN
        PERFORM pg_notify('billing_live', 'a:' || NEW.id);
    ELSE
        PERFORM pg_notify('billing_live', 'a:' || NEW.account_id);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_index(
        "ix_ledger_tx_account_created", "ledger_transactions", ["account_id", "created_at"]
    )
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER accounts_live AFTER INSERT OR UPDATE ON accounts FOR EACH ROW "
        "EXECUTE FUNCTION billing_live_notify()"
    )
    op.execute(
        "CREATE TRIGGER calls_live AFTER INSERT OR UPDATE ON calls FOR EACH ROW "
        "EXECUTE FUNCTION billing_live_notify()"
    )
    op.execute(
        "CREATE TRIGGER api_keys_live AFTER UPDATE ON api_keys FOR EACH ROW "
        "WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at) "
        "EXECUTE FUNCTION billing_live_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_keys_live ON api_keys")
    op.execute("DROP TRIGGER IF EXISTS calls_live ON calls")
    op.execute("DROP TRIGGER IF EXISTS accounts_live ON accounts")
    op.execute("DROP FUNCTION IF EXISTS billing_live_notify()")
    op.drop_index("ix_ledger_tx_account_created", table_name="ledger_transactions")
