"""The dev stack's secrets (dev.stack.run_dir_secrets): generated per run directory on first
use, kept in RUN_DIR/secrets.json readable by the owner only, the same after a restart, never
shared between two run directories; ADMIN_API_KEY / SESSION_SECRET from the environment win."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest

from core.config import Settings
from core.production import insecure_settings
from dev.razorpay import devstack, standin
from dev.stack import StackConfig, run_dir_secrets


def test_secrets_are_generated_once_per_run_directory(tmp_path: Path) -> None:
    first = run_dir_secrets(tmp_path / "a")
    path = tmp_path / "a" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run_dir_secrets(tmp_path / "a") == first  # a restart keeps sessions and the key
    other = run_dir_secrets(tmp_path / "b")
    assert other["SESSION_SECRET"] != first["SESSION_SECRET"]
    assert other["ADMIN_API_KEY"] != first["ADMIN_API_KEY"]
    # Strong enough that even production's checks would take them.
    settings = Settings(
        billing_env="production",
        session_secret=first["SESSION_SECRET"],
        admin_api_key=first["ADMIN_API_KEY"],
    )
    assert insecure_settings(settings, "api") == []


def test_the_environment_wins_over_the_kept_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUN_DIR", str(tmp_path))
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    args = argparse.Namespace(
        demo=False, demo_duration=None, demo_rate=None, demo_accounts=None, verbose=False
    )
    kept = StackConfig.from_env(args)
    assert kept.admin_key_generated
    assert (kept.admin_api_key, kept.session_secret) == (
        run_dir_secrets(tmp_path)["ADMIN_API_KEY"],
        run_dir_secrets(tmp_path)["SESSION_SECRET"],
    )
    monkeypatch.setenv("ADMIN_API_KEY", "from-the-environment")
    monkeypatch.setenv("SESSION_SECRET", "also-from-the-environment")
    given = StackConfig.from_env(args)
    assert not given.admin_key_generated
    assert (given.admin_api_key, given.session_secret) == (
        "from-the-environment",
        "also-from-the-environment",
    )


def test_the_standin_takes_secrets_that_look_like_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated secret starting with "-" once made the stand-in's argparse exit 2 (and the
    stack with it): the secrets go as `--name=value`."""
    for name in ("token_hex", "token_urlsafe"):
        monkeypatch.setattr(devstack.secrets, name, lambda n: "-" + "a" * (2 * n - 1))
    env, command = devstack.standin_settings("http://127.0.0.1:1", port=2)
    assert command[1:3] == ["-m", "dev.razorpay"]
    args = standin.parse_args(command[3:])
    assert args.key_secret == env["RAZORPAY_KEY_SECRET"] and args.key_secret[0] == "-"
    assert args.webhook_secret == env["RAZORPAY_WEBHOOK_SECRET"]
    assert args.key_id == env["RAZORPAY_KEY_ID"] and args.port == 2
