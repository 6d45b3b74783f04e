"""The one way anything hands money in to Temporal: `CheckoutWorkflow`
(`checkout_workflow_id(order_id)`) is started when an order is created, and signal-with-started
with `gateway_event` for each stored webhook event of the order; an auto-recharge checkout the
ledger recorded goes to its `AutoRechargeWorkflow`. All idempotent: a running workflow is
reused, a repeated signal names an event the workflow (and the ledger) settle once.

The order and event hand-overs raise: the caller answers 503 (the API) or retries (an
activity), so an event is never acknowledged before Temporal has it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from domain.contracts import (
    AUTO_RECHARGE_WORKFLOW,
    CHECKOUT_WORKFLOW,
    GATEWAY_EVENT_SIGNAL,
    auto_recharge_workflow_id,
    checkout_workflow_id,
)
from domain.contracts.payments import CheckoutInput, GatewayEventRef

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0


async def start_checkout_workflow(
    client: Client, order_id: str, *, task_queue: str, timeout: float = TIMEOUT_SECONDS
) -> None:
    await asyncio.wait_for(
        client.start_workflow(
            CHECKOUT_WORKFLOW,
            CheckoutInput(order_id=order_id),
            id=checkout_workflow_id(order_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        ),
        timeout,
    )


async def signal_gateway_event(
    client: Client,
    order_id: str,
    event: GatewayEventRef,
    *,
    task_queue: str,
    timeout: float = TIMEOUT_SECONDS,
) -> None:
    """Signal-with-start: a new run for an order whose workflow has finished (a late or repeated
    event) settles the event and ends."""
    await asyncio.wait_for(
        client.start_workflow(
            CHECKOUT_WORKFLOW,
            CheckoutInput(order_id=order_id),
            id=checkout_workflow_id(order_id),
            task_queue=task_queue,
            start_signal=GATEWAY_EVENT_SIGNAL,
            start_signal_args=[event],
        ),
        timeout,
    )


async def start_auto_recharges(
    client: Client | None,
    checkout_ids: Sequence[str],
    *,
    task_queue: str,
    timeout: float = TIMEOUT_SECONDS,
) -> list[str]:
    """Hand each recorded auto-recharge checkout to its `AutoRechargeWorkflow`
    (`auto_recharge_workflow_id`), which makes the gateway order and the charge. Never raises:
    the crossing is committed; one not handed over now is handed over after the account's next
    balance change (it stays a checkout without an order). Returns the ids Temporal took."""
    if client is None:
        return []
    started: list[str] = []
    for checkout_id in checkout_ids:
        try:
            await asyncio.wait_for(
                client.start_workflow(
                    AUTO_RECHARGE_WORKFLOW,
                    checkout_id,
                    id=auto_recharge_workflow_id(checkout_id),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                ),
                timeout,
            )
        except Exception as exc:
            log.warning("auto-recharge %s not handed over: %s", checkout_id, exc)
            continue
        started.append(checkout_id)
    return started
