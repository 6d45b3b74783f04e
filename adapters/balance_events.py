"""The one publisher of low-balance crossings to `AccountWorkflow`.

The ledger records a crossing in the alert outbox in the same transaction as the balance change
that caused it (ledger.alerts). Whoever commits that change passes the outbox rows here right
after the commit; the reconciler passes whatever is still undelivered later. Each row is
signal-with-started to `AccountWorkflow` (`account_workflow_id`) as the signal `low_balance`;
the workflow sends the email (retrying) and its activity marks the row delivered. A row handed
over twice is harmless: the workflow skips a key it holds or has just sent, and the email log
sends one email per key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from temporalio.client import Client

from domain.contracts import ACCOUNT_WORKFLOW, LOW_BALANCE_SIGNAL, account_workflow_id
from domain.contracts.accounts import AccountWorkflowInput, LowBalanceAlert

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0


async def publish_low_balance_alerts(
    client: Client | None,
    alerts: Sequence[LowBalanceAlert],
    *,
    task_queue: str,
    timeout: float = TIMEOUT_SECONDS,
) -> list[str]:
    """Hand each alert to its account's workflow; returns the dedupe keys Temporal accepted.
    Never raises (the crossing is committed and stays in the outbox until delivered): a failure
    is logged and left to the reconciler. No client (an API without Temporal): nothing now."""
    if client is None or not alerts:
        return []
    accepted: list[str] = []
    for alert in alerts:
        try:
            await asyncio.wait_for(_signal_with_start(client, alert, task_queue), timeout)
        except Exception as exc:
            log.warning(
                "low-balance alert %s not handed over (the reconciler retries): %s",
                alert.dedupe_key,
                str(exc) or type(exc).__name__,
            )
            continue
        accepted.append(alert.dedupe_key)
    return accepted


async def _signal_with_start(client: Client, alert: LowBalanceAlert, task_queue: str) -> None:
    await client.start_workflow(
        ACCOUNT_WORKFLOW,
        AccountWorkflowInput(account_id=alert.account_id),
        id=account_workflow_id(alert.account_id),
        task_queue=task_queue,
        start_signal=LOW_BALANCE_SIGNAL,
        start_signal_args=[alert],
    )
