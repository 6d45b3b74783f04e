"""Replay stored histories of CallBillingWorkflow with today's code: a change that breaks
determinism (reordered commands, a new activity, a changed timer) fails here, before it can
wedge calls in flight. Record new histories with `BILLING_RECORD_HISTORIES=1 pytest
tests/replay` after an intentional, versioned change (workflow.patched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.calls import CallBillingWorkflow

HISTORIES = Path(__file__).parent / "histories"
HISTORY_FILES = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    stored = json.loads(path.read_text())
    return WorkflowHistory.from_json(stored["workflow_id"], stored["history"])


def test_histories_are_stored() -> None:
    names = {path.stem for path in HISTORY_FILES}
    shapes = ["completed_442", "refused", "failed", "abandoned"]
    # Recorded before the ledger kept usage (the old shape), since (`ledger_`), and since the
    # client gives the call's search attributes at start (`lean_`), since lean runs checkpoint
    # at usage signals (`signal_`), and since the client gives the shape memo (`memo_`).
    for prefix in ("", "ledger_", "lean_", "signal_", "memo_"):
        assert {f"{prefix}{shape}" for shape in shapes} <= names
        assert any(name.startswith(f"{prefix}continued_") for name in names)


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.stem)
async def test_stored_history_replays_deterministically(path: Path) -> None:
    replayer = Replayer(workflows=[CallBillingWorkflow])
    await replayer.replay_workflow(load(path))
