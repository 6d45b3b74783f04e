"""Retry policies the payment workflows share (checkouts, refunds): the ledger retries fast,
the gateway backs off to a minute."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
GATEWAY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)
