"""All settings in one place, read from the environment (contract §5)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.contracts import DEFAULT_LATE_USAGE_WINDOW_SECONDS, TASK_QUEUE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str | None = None  # required by the API and the worker (dev.stack passes one)
    temporal_address: str | None = None  # unset: 127.0.0.1:7233 (the dev server's address)
    temporal_namespace: str = "default"
    task_queue: str = TASK_QUEUE
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
    # Usage for a finalized call is charged as an adjustment this long after its hangup (§3).
    late_usage_window_seconds: int = DEFAULT_LATE_USAGE_WINDOW_SECONDS
    # The sandbox guards workflow determinism at a cost of ~40 ms CPU per call (docs/benchmarks.md).
    # The test suite and the replay test run the workflows sandboxed; production may turn it off.
    workflow_sandbox: bool = False
    # Payments (contract §6). No key: the dev stack runs the local Razorpay stand-in.
    razorpay_key_id: str | None = None
    razorpay_key_secret: str | None = None
    razorpay_webhook_secret: str | None = None
    razorpay_api_url: str | None = None  # unset: Razorpay's own API (https://api.razorpay.com)
    session_secret: str = "dev-only-change-me"
    # Off in production, where the one-shot `migrate` job (python -m db.migrate) owns the schema.
    migrate_on_start: bool = True
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
