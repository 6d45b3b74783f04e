"""The one way anything hands a gateway order to Temporal: `CheckoutWorkflow`
(`checkout_workflow_id(order_id)`) is started when an order is created, and signal-with-started
with `gateway_event` for each stored webhook event of the order. Both are idempotent: a running
workflow is reused, a repeated signal names an event the workflow (and the ledger) settle once.

Unlike `balance_events`, these raise: the caller answers 503 (the API) or retries (an activity),
so an event is never acknowledged before Temporal has it."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from domain.contracts import CHECKOUT_WORKFLOW, GATEWAY_EVENT_SIGNAL, checkout_workflow_id
from domain.contracts.payments import CheckoutInput, GatewayEventRef

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
