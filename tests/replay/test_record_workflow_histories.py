"""Records the AccountWorkflow, RefundWorkflow and ReconcilerWorkflow histories that
test_replay_workflows.py replays. Skipped unless BILLING_RECORD_HISTORIES=1: it (re)writes
tests/replay/histories/{accounts,refunds,reconciler}/ (the `legacy_*` files there were recorded
with the code before the alert outbox and the refund decision; keep them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adapters.balance_events import publish_low_balance_alerts
from adapters.payments.gateway import SandboxBehavior
from domain.contracts import (
    REFUND_DECISION_UPDATE,
    REFUND_WORKFLOW,
    account_workflow_id,
    refund_workflow_id,
)
from domain.contracts.accounts import LowBalanceAlert
from domain.contracts.reconciler import ReconcilerInput
from domain.contracts.refunds import RefundDecisionRequest, RefundInput, RefundResult
from tests.support.email import Harness, capture_server, eventually, harness, messages_to, uid
from workflows.accounts import AccountWorkflow
from workflows.reconciler import ReconcilerWorkflow

__all__ = ["capture_server", "harness"]
HISTORIES = Path(__file__).parent / "histories"
pytestmark = pytest.mark.skipif(
    os.environ.get("BILLING_RECORD_HISTORIES") != "1", reason="records fixtures on request only"
)


async def save(h: Harness, workflow_id: str, path: Path) -> None:
    history = await h.client.get_workflow_handle(workflow_id).fetch_history()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"workflow_id": workflow_id, "history": history.to_json_dict()}, indent=1)
    )


async def refund_with_decision(h: Harness, account_id: str, amount: int, name: str) -> None:
    refund_id = uid("rf")
    handle = await h.client.start_workflow(
        REFUND_WORKFLOW,
        RefundInput(refund_id, account_id, amount),
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
        result_type=RefundResult,
    )
    await handle.execute_update(
        REFUND_DECISION_UPDATE, RefundDecisionRequest(amount), result_type=RefundResult
    )
    await handle.result()
    await save(h, refund_workflow_id(refund_id), HISTORIES / "refunds" / f"{name}.json")


async def test_record(harness: Harness) -> None:
    h = harness
    # Two crossings from the outbox, one handed over twice.
    account_id, email = await h.new_account()
    await h.charge(account_id, 4_000_000)
    await eventually(lambda: messages_to(h.capture, email))
    await h.top_up(account_id, 10_000)
    await h.charge(account_id, 8_000_000)
    await eventually(lambda: len(messages_to(h.capture, email)) == 2)
    status = await h.client.get_workflow_handle_for(
        AccountWorkflow.run, account_workflow_id(account_id)
    ).query(AccountWorkflow.status)
    sent = status.state.sent_alert_keys[0]
    again = LowBalanceAlert(account_id, sent, 0, 0, 0, 0, 1000)
    await publish_low_balance_alerts(h.client, [again], task_queue=h.task_queue)

    async def idle() -> bool:
        s = await h.client.get_workflow_handle_for(
            AccountWorkflow.run, account_workflow_id(account_id)
        ).query(AccountWorkflow.status)
        return s.state.duplicate_alerts == 1 and not s.state.queued_alerts

    await eventually(idle)
    await save(h, account_workflow_id(account_id), HISTORIES / "accounts" / "outbox_crossings.json")

    account_id, _ = await h.new_account(paid_paisa=20_000)
    await refund_with_decision(h, account_id, 5000, "decision_completed")
    await refund_with_decision(h, account_id, 99_999, "decision_refused")
    refund_id = uid("rf")
    h.gateway.set_refund_behavior(refund_id, SandboxBehavior(fail_reason="card closed"))
    await h.client.execute_workflow(
        REFUND_WORKFLOW,
        RefundInput(refund_id, account_id, 3000),
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
        result_type=RefundResult,
    )
    await save(h, refund_workflow_id(refund_id), HISTORIES / "refunds" / "gateway_failed.json")

    workflow_id = uid("billing-reconciler")
    await h.client.execute_workflow(
        ReconcilerWorkflow.run,
        ReconcilerInput(steps=[*ReconcilerInput().steps, "reconcile_no_such_step"]),
        id=workflow_id,
        task_queue=h.task_queue,
    )
    await save(h, workflow_id, HISTORIES / "reconciler" / "all_steps_and_a_failing_one.json")


async def test_record_refund_parts(harness: Harness) -> None:
    """Refunds with parts (the `refund-parts` patch): one processed, one whose part failed."""
    h = harness
    account_id, _ = await h.new_account(paid_paisa=20_000)
    await refund_with_decision(h, account_id, 5000, "parts_completed")
    refund_id = uid("rf")
    h.gateway.set_refund_behavior(refund_id, SandboxBehavior(fail_reason="card closed"))
    await h.client.execute_workflow(
        REFUND_WORKFLOW,
        RefundInput(refund_id, account_id, 3000),
        id=refund_workflow_id(refund_id),
        task_queue=h.task_queue,
        result_type=RefundResult,
    )
    await save(h, refund_workflow_id(refund_id), HISTORIES / "refunds" / "parts_failed.json")
