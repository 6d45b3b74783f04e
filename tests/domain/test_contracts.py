"""domain.contracts: the ids, and the readers of the hand-built signals, which must take any
JSON without raising (a raise in a signal handler fails the workflow task)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import pytest

from domain.channels import COMPONENT_UNITS, Component, Outcome
from domain.contracts import (
    CallState,
    RefundStatus,
    account_workflow_id,
    call_id_of,
    call_workflow_id,
    refund_workflow_id,
)
from domain.contracts.calls import (
    AuthorizeResult,
    CallBreakdown,
    Hangup,
    UsageBatch,
    UsageReport,
    usage_events_from_wire,
)
from domain.contracts.refunds import RefundResult
from domain.ledger_types import AuthorizeDecision
from domain.rating import Breakdown


def test_workflow_ids() -> None:
    assert call_workflow_id("c-1") == "call-c-1"
    assert call_id_of(call_workflow_id("call-7")) == "call-7"
    assert call_id_of(account_workflow_id("acc_1")) is None
    assert account_workflow_id("acc_1") == "account-acc_1"
    assert refund_workflow_id("ref_1") == "refund-ref_1"


def test_usage_report_has_a_field_for_every_unit() -> None:
    units = {unit for per_component in COMPONENT_UNITS.values() for unit in per_component}
    assert units <= {f.name for f in fields(UsageReport)}


def test_usage_reports_go_on_the_wire_without_unset_fields() -> None:
    report = UsageReport("stt-1", Component.STT, "deepgram/nova-3", audio_seconds=60)
    wire = {"event_id": "stt-1", "component": "stt", "sku": "deepgram/nova-3", "audio_seconds": 60}
    assert json.loads(json.dumps(report.to_wire())) == wire
    assert UsageBatch([report]).to_wire() == {"events": [report.to_wire()]}


@pytest.mark.parametrize(
    ("payload", "events"),
    [
        ({"event_id": "a"}, [{"event_id": "a"}]),
        ({"events": [{"event_id": "a"}, 3]}, [{"event_id": "a"}, 3]),
        ({"events": "nope"}, None),
        ({"events": None}, None),
        (42, [42]),
        (None, [None]),
    ],
)
def test_usage_signal_reader(payload: object, events: list[object] | None) -> None:
    assert usage_events_from_wire(payload) == events


def test_hangup_reader_takes_what_an_orchestrator_may_send() -> None:
    hangup = Hangup.from_wire({"outcome": "busy", "reason": "x" * 600, "ended_at": "2026-01-01"})
    assert hangup == Hangup(Outcome.BUSY, "x" * 500, "2026-01-01")
    assert Hangup.from_wire({"outcome": "failed", "ended_at": "soon"}) == Hangup(Outcome.FAILED)
    assert Hangup.from_wire({"outcome": "completed", "reason": 7}) == Hangup(Outcome.COMPLETED, "7")


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "completed",
        ["completed"],
        {},
        {"outcome": ["completed"]},
        {"outcome": {"x": 1}},
        {"outcome": "exploded"},
        {"outcome": "abandoned"},  # the workflow's own outcome, not an orchestrator's
        {"outcome": "refused"},
    ],
)
def test_hangup_reader_ignores_anything_else(payload: object) -> None:
    assert Hangup.from_wire(payload) is None


def test_typed_results_keep_the_contract_field_names() -> None:
    decision = AuthorizeDecision(True, None, 1000, 55_000, 3, "0.30")
    assert asdict(AuthorizeResult.of(decision)) == {
        "authorized": True,
        "reason": None,
        "hold_paisa": 1000,
        "available_paisa": 55_000,
        "rate_card_version": 3,
    }
    breakdown = CallBreakdown.of(Breakdown(40, 50, 220, 30, 340, 102, 442, "0.30"))
    assert json.loads(json.dumps(asdict(breakdown))) == {
        "llm_paisa": 40,
        "stt_paisa": 50,
        "tts_paisa": 220,
        "sip_paisa": 30,
        "provider_total_paisa": 340,
        "margin_paisa": 102,
        "total_paisa": 442,
    }
    refund = RefundResult("ref_1", "acc_1", 500, RefundStatus.PENDING)
    assert json.loads(json.dumps(asdict(refund)))["status"] == "pending"
    assert json.dumps(CallState.FINALIZED) == '"finalized"'
