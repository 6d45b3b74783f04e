"""Replay the stored histories of AccountWorkflow, RefundWorkflow and ReconcilerWorkflow with
today's code (CallBillingWorkflow's are test_replay.py's). `legacy_*` were recorded with the
code before the alert outbox and the refund decision: workflows started then must still run.
Record the others with `BILLING_RECORD_HISTORIES=1 pytest tests/replay`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.accounts import AccountWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.refunds import RefundWorkflow

HISTORIES = Path(__file__).parent / "histories"
KINDS = ("accounts", "refunds", "reconciler")
HISTORY_FILES = sorted(path for kind in KINDS for path in (HISTORIES / kind).glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    stored = json.loads(path.read_text())
    return WorkflowHistory.from_json(stored["workflow_id"], stored["history"])


def test_histories_are_stored() -> None:
    names = {f"{path.parent.name}/{path.stem}" for path in HISTORY_FILES}
    assert {
        "accounts/legacy_two_crossings",
        "accounts/outbox_crossings",
        "refunds/legacy_completed",
        "refunds/legacy_refused",
        "refunds/legacy_gateway_failed",
        "refunds/decision_completed",
        "refunds/decision_refused",
        "refunds/parts_completed",
        "refunds/parts_failed",
        "reconciler/all_steps_and_a_failing_one",
    } <= names


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_stored_history_replays_deterministically(path: Path) -> None:
    replayer = Replayer(workflows=[AccountWorkflow, RefundWorkflow, ReconcilerWorkflow])
    await replayer.replay_workflow(load(path))
