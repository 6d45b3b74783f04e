"""Start the stack's servers locally: embedded PostgreSQL, the Temporal dev server, helpers."""
