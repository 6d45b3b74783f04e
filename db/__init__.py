"""Data access: SQLAlchemy 2 models, sessions, Alembic migrations."""
