"""Alembic environment: the URL comes from the caller (db.migrate) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from db import payment_models  # noqa: F401  (its tables join Base.metadata)
from db.models import Base
from db.session import normalize_url

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")
if not url:
    raise RuntimeError("set DATABASE_URL (or call db.migrate.upgrade(url))")

connectable = create_engine(normalize_url(url), poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        # Serialize concurrent migrators (API and worker starting together).
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        context.run_migrations()
