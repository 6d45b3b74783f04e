"""All settings in one place, read from the environment (contract §5)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str | None = None  # unset: an embedded PostgreSQL (pgserver) under run_dir
    temporal_address: str | None = None  # unset: an embedded dev server on 127.0.0.1:7233
    temporal_namespace: str = "default"
    task_queue: str = "billing"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    worker_metrics_port: int = 9464
    admin_api_key: str | None = None
    sendgrid_api_key: str | None = None
    sendgrid_host: str | None = None  # unset with no key: the local capture server
    email_from: str = "billing@osmtalk.example"
    dashboard_url: str = "http://127.0.0.1:8000"
    min_balance_paisa: int = 1000
    welcome_promo_paisa: int = 5000
    call_hold_paisa: int | None = None  # unset: equal to the account's minimum balance
    max_call_duration_seconds: int = 4 * 3600
    hold_grace_seconds: int = 15 * 60
    # The sandbox guards workflow determinism at a cost of ~40 ms CPU per call (docs/benchmarks.md).
    # The test suite and the replay test run the workflows sandboxed; production may turn it off.
    workflow_sandbox: bool = False
    session_secret: str = "dev-only-change-me"
    run_dir: str = ".run"
    # Off in production, where the one-shot `migrate` job (python -m db.migrate) owns the schema.
    migrate_on_start: bool = True
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
