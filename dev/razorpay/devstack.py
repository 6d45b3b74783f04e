"""How `make run`/`make serve` (dev.stack) use the stand-in: when RAZORPAY_KEY_ID is unset, a
stand-in on RAZORPAY_STANDIN_PORT (8790) with a key id, key secret and webhook secret generated
for the session, sending its webhooks to the API; the API and the worker get them as the
RAZORPAY_* variables, exactly as they would get a Razorpay test account's."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

from dev.procs import python_command

DEFAULT_PORT = 8790


def wanted(env: Mapping[str, str]) -> bool:
    return not env.get("RAZORPAY_KEY_ID", "").strip()


STANDIN_PAYOUT_ACCOUNT_NUMBER = "7878780080316316"
STANDIN_FUND_ACCOUNT_ID = "fa_StandInPlaceholder"


def standin_settings(api_url: str, port: int | None = None) -> tuple[dict[str, str], list[str]]:
    """(the RAZORPAY_* variables for the stack, the stand-in's command line)."""
    port = port or int(os.environ.get("RAZORPAY_STANDIN_PORT") or DEFAULT_PORT)
    env = {
        "RAZORPAY_KEY_ID": "rzp_test_" + secrets.token_hex(7),
        # Hex: a urlsafe secret may start with "-", which the stand-in's argparse took for an
        # option (the `--name=value` form below is safe either way).
        "RAZORPAY_KEY_SECRET": secrets.token_hex(18),
        "RAZORPAY_WEBHOOK_SECRET": secrets.token_hex(18),
        "RAZORPAY_API_URL": f"http://127.0.0.1:{port}",
        # Refund payouts: the stand-in accepts any account number and fund account.
        "RAZORPAYX_ACCOUNT_NUMBER": STANDIN_PAYOUT_ACCOUNT_NUMBER,
        "REFUND_PAYOUT_FUND_ACCOUNT_ID": STANDIN_FUND_ACCOUNT_ID,
    }
    command = python_command(
        "dev.razorpay",
        "--port",
        str(port),
        f"--key-id={env['RAZORPAY_KEY_ID']}",
        f"--key-secret={env['RAZORPAY_KEY_SECRET']}",
        f"--webhook-secret={env['RAZORPAY_WEBHOOK_SECRET']}",
        "--webhook-url",
        f"{api_url}/v1/webhooks/razorpay",
    )
    return env, command
