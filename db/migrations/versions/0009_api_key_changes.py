"""api key changes

Revision ID: 0009
Revises: 0002
Create Date: 2026-11-30 18:40:00

The API processes keep the keys they have looked up for a few seconds (api.key_cache). Any
change of an `api_keys` row (revoked, un-revoked, edited or deleted) sends
`NOTIFY billing_api_keys, '<key_id>'` at commit, on a channel of its own so the listeners do not
also receive every balance change of `billing_live` (one per charge); each API process drops
that key at once (ledger.api_keys.key_changes).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION api_key_changed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('billing_api_keys', OLD.id);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys FOR EACH ROW "
        "EXECUTE FUNCTION api_key_changed_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_keys_changed ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS api_key_changed_notify()")
