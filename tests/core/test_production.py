"""Production refuses to start without its secrets (core.production, contract §4): the rules,
the API's app factory, and the real `uvicorn api.main:app` and `python -m worker` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from core.config import Settings
from core.production import InsecureSettings, insecure_settings, refuse_insecure_start

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 40


def test_production_is_the_default_and_needs_a_session_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BILLING_ENV", raising=False)
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    settings = Settings()
    assert settings.billing_env == "production" and settings.session_secret is None
    assert insecure_settings(settings, "api") == ["SESSION_SECRET is required"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"session_secret": "dev-only-change-me"}, "SESSION_SECRET is a published example value"),
        ({"session_secret": "change-me-in-production"}, "SESSION_SECRET is a published"),
        ({"session_secret": "short"}, "SESSION_SECRET is shorter than 32 characters"),
        ({"session_secret": STRONG, "admin_api_key": "admin"}, "ADMIN_API_KEY is shorter"),
    ],
)
def test_public_or_weak_secrets_are_refused(fields: dict[str, Any], problem: str) -> None:
    problems = insecure_settings(Settings(billing_env="production", **fields), "api")
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_what_passes_and_what_the_worker_needs() -> None:
    assert insecure_settings(Settings(billing_env="production", session_secret=STRONG), "api") == []
    worker = Settings(billing_env="production", session_secret=None)
    assert insecure_settings(worker, "worker") == [
        "SENDGRID_API_KEY is required (without it no email would go out)"
    ]
    assert (
        insecure_settings(Settings(billing_env="production", sendgrid_api_key="SG.x"), "worker")
        == []
    )
    # Development needs nothing and gets a random session secret per process, never a shared one.
    first, second = Settings(billing_env="development"), Settings(billing_env="development")
    assert insecure_settings(first, "api") == insecure_settings(first, "worker") == []
    assert first.session_secret and len(first.session_secret) >= 32
    assert first.session_secret != second.session_secret
    with pytest.raises(InsecureSettings, match="SESSION_SECRET is required"):
        refuse_insecure_start(Settings(billing_env="production"), "api")


async def test_the_app_factory_refuses_to_start_in_production_without_secrets() -> None:
    app = create_app(Settings(billing_env="production", database_url="postgresql://unused/x"))
    with pytest.raises(InsecureSettings, match="SESSION_SECRET"):
        async with app.router.lifespan_context(app):
            pass


def _run(module_args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SESSION_SECRET", "SENDGRID_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", *module_args],
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), "BILLING_ENV": "production", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_uvicorn_exits_in_production_without_session_secret() -> None:
    result = _run(
        ["uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", "0"],
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/never",  # refused before connecting
    )
    assert result.returncode != 0
    assert "refuses to start in production" in result.stderr
    assert "SESSION_SECRET is required" in result.stderr


def test_the_worker_exits_in_production_without_sendgrid() -> None:
    result = _run(["worker"], DATABASE_URL="postgresql://postgres@127.0.0.1:1/never")
    assert result.returncode != 0
    assert "SENDGRID_API_KEY is required" in result.stderr
