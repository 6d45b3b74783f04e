"""Every balance change (call finalization, API charge, top-up, coupon, refund) is reported
here after its ledger transaction commits. The account workflow decides on alerts.

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


def _default_task_queue() -> str:
    from core.config import get_settings

    return get_settings().task_queue


async def notify_balance_changed(
    client: Client, snapshot: BalanceSnapshot, *, task_queue: str | None = None
) -> None:
    """Best effort for the caller: the ledger is already committed. Never raises for a
    missing account workflow; it is started on demand. A failure after a few tries is logged,
    not raised: the next balance change carries the full snapshot again."""
    queue = task_queue or _default_task_queue()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await client.start_workflow(
                ACCOUNT_WORKFLOW,
                AccountWorkflowInput(account_id=snapshot.account_id),
                id=account_workflow_id(snapshot.account_id),
                task_queue=queue,
                start_signal=BALANCE_CHANGED_SIGNAL,
                start_signal_args=[snapshot],
            )
            return
        except Exception as exc:  # the ledger is committed: never fail the caller
            if attempt == ATTEMPTS:
                log.warning(
                    "balance_changed for %s (version %s) not delivered: %s",
                    snapshot.account_id,
                    snapshot.version,
                    exc,
                )
                return
            await asyncio.sleep(0.1 * attempt)
