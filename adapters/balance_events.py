"""The one publisher of balance changes: every balance change (call finalization, API charge,
top-up, coupon, refund) is reported here after its ledger transaction commits. The account
workflow decides on alerts.

`notify_balance_changed` signal-with-starts `AccountWorkflow` (`account_workflow_id`) with the
signal `balance_changed` carrying the snapshot (names and shapes: domain.contracts). Signals are
not deduplicated, but the workflow ignores snapshots older than the newest it has seen
(`version`), so repeats and reordering are harmless.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client

from domain.contracts import ACCOUNT_WORKFLOW, BALANCE_CHANGED_SIGNAL, account_workflow_id
from domain.contracts.accounts import AccountWorkflowInput
from domain.ledger_types import BalanceSnapshot

log = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT_SECONDS = 5.0


def _default_task_queue() -> str:
    from core.config import get_settings

    return get_settings().task_queue


async def notify_balance_changed(
    client: Client | None,
    snapshot: BalanceSnapshot,
    *,
    task_queue: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> None:
    """Best effort for the caller, whose ledger change is already committed: never raises and
    gives up after `timeout` seconds (a few tries); a failure is logged, and the next balance
    change carries the full snapshot again. A missing account workflow is started on demand.
    No client (an API that could not connect to Temporal): nothing to do."""
    if client is None:
        return
    queue = task_queue or _default_task_queue()
    try:
        await asyncio.wait_for(_signal_with_start(client, snapshot, queue), timeout)
    except Exception as exc:  # the ledger is committed: never fail the caller
        log.warning(
            "balance_changed for %s (version %s) not delivered: %s",
            snapshot.account_id,
            snapshot.version,
            str(exc) or type(exc).__name__,
        )


async def _signal_with_start(client: Client, snapshot: BalanceSnapshot, task_queue: str) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await client.start_workflow(
                ACCOUNT_WORKFLOW,
                AccountWorkflowInput(account_id=snapshot.account_id),
                id=account_workflow_id(snapshot.account_id),
                task_queue=task_queue,
                start_signal=BALANCE_CHANGED_SIGNAL,
                start_signal_args=[snapshot],
            )
            return
        except Exception:
            if attempt == ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)
