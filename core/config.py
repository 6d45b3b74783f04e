"""All settings in one place, read from the environment (contract §5)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.contracts import DEFAULT_LATE_USAGE_WINDOW_SECONDS, TASK_QUEUE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # `production` (the default) refuses to start with missing or weak secrets (core.production)
    # and always sets `Secure` cookies; `development` is set by the dev stack and the tests.
    billing_env: Literal["production", "development"] = "production"
    database_url: str | None = None  # required by the API and the worker (dev.stack passes one)
    temporal_address: str | None = None  # unset: 127.0.0.1:7233 (the dev server's address)
    temporal_namespace: str = "default"
    task_queue: str = TASK_QUEUE
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn worker processes (dev.stack, bench.stack; compose passes --workers itself).
    api_workers: int = 1
    # Per API process: threads for the synchronous ledger calls, each with its own pooled
    # connection (pool = threads + 2, no overflow: no connection churn, no pre-ping), and the
    # async pool of the hot paths (osmAPI charge and authorize, API key lookups).
    api_db_threads: int = 16
    api_hot_pool_size: int = 8
    # A looked-up API key is kept this long per process (api.key_cache; a revocation still
    # reaches every process at once by NOTIFY); 0 reads the key on every request.
    api_key_cache_seconds: float = 5.0
    worker_metrics_port: int = 9464
    # The API's Prometheus endpoint, an internal port (0 turns it off); its ledger gauges are
    # re-read from PostgreSQL at most this often.
    api_metrics_host: str = "127.0.0.1"
    api_metrics_port: int = 9465
    ledger_gauges_refresh_seconds: float = 15.0
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
    # How long POST /refunds waits for the refund workflow to debit (or refuse) before a 503
    # (the retry with the same Idempotency-Key then finds the same refund).
    refund_decision_timeout_seconds: float = 10.0
    # The worker creates the reconciler's Temporal Schedule at start (off: a worker that only
    # serves, e.g. a second one in a test).
    reconciler_schedule: bool = True
    # The sandbox guards workflow determinism at a cost of ~40 ms CPU per call (docs/benchmarks.md).
    # The test suite and the replay test run the workflows sandboxed; production may turn it off.
    workflow_sandbox: bool = False
    # Threads that run workflow activations (the SDK's default: one per workflow task slot, up to
    # hundreds). Activations hold the GIL throughout, so more threads add no throughput, only
    # GIL hand-offs and a starved event loop under bursts (docs/benchmarks.md); two, so one long
    # activation (a replay after a restart) does not hold up the rest.
    worker_workflow_threads: int = 2
    # Workflow task polls the worker keeps open, and the share of them on the task queue itself
    # (the rest wait on this worker's sticky queue). Every call's first workflow task, the one
    # that runs its authorize, comes from the task queue: the SDK's 5 polls at 0.2 left one poll
    # there, and new calls queued behind it (docs/benchmarks.md).
    worker_workflow_task_polls: int = 10
    worker_nonsticky_poll_ratio: float = 0.5
    # The worker's async pool for every call's ledger transactions (authorize, usage checkpoint,
    # finalize), run on its event loop; 0: each goes through a Session on a thread, as the
    # rarer cases (housekeeping, a call finalized already, an auto-recharge to record) always do.
    worker_ledger_pool_size: int = 8
    # Payments (contract §6). No key: the dev stack runs the local Razorpay stand-in.
    razorpay_key_id: str | None = None
    razorpay_key_secret: str | None = None
    razorpay_webhook_secret: str | None = None
    razorpay_api_url: str | None = None  # unset: Razorpay's own API (https://api.razorpay.com)
    razorpay_timeout_seconds: float = 10.0  # per gateway request (a slow order is a 503)
    # Refund payouts (RazorpayX): the account number money is paid out from (unset: payout
    # parts fail and are credited back), and a fund account for accounts without their own
    # (`accounts.payout_fund_account_id`): the dev stand-in's placeholder; unset in production.
    razorpayx_account_number: str | None = None
    refund_payout_fund_account_id: str | None = None
    checkout_min_paisa: int = 10_000  # ₹100
    checkout_max_paisa: int = 50_000_000  # ₹5,00,000
    checkout_expiry_seconds: int = 30 * 60  # an unpaid checkout expires after this
    # Signs dashboard sessions. Required in production; unset in development: a random secret
    # per process (dev.stack generates one per run directory and passes it on).
    session_secret: str | None = None
    # Requests per API key (a `limits` string such as "100/second;2000/minute"; empty: none).
    rate_limit_customer: str = "100/second"
    rate_limit_support: str = ""
    rate_limit_admin: str = ""
    rate_limit_orchestrator: str = ""
    # Failed `POST /login` attempts per client address before 429.
    login_failures_per_minute: int = 10
    # Off in production, where the one-shot `migrate` job (python -m db.migrate) owns the schema.
    migrate_on_start: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _development_session_secret(self) -> Settings:
        # Development without SESSION_SECRET: a random one for this process, never a public
        # default (production refuses to start instead, core.production).
        if self.session_secret is None and self.billing_env == "development":
            self.session_secret = secrets.token_urlsafe(32)
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
