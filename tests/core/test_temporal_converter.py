"""`core.temporal_converter` decodes exactly what the SDK's default converter decodes (the
payloads of every stored call history, typed as the workflow and its clients read them), errs
where it errs, and is what `connect_temporal` gives clients and workers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from core.temporal_converter import BILLING_DATA_CONVERTER
from domain.contracts.call_usage import CheckpointedUsage, LateUsageResult
from domain.contracts.calls import CallAuthorization, CallInput, CallResult
from domain.ledger_types import FinalizedCall

HISTORIES = Path(__file__).parents[1] / "replay" / "histories"
RESULT_TYPES: dict[str, type] = {
    "call_authorize": CallAuthorization,
    "call_checkpoint": CheckpointedUsage,
    "call_finalize": FinalizedCall,
    "call_late_usage": LateUsageResult,
}
DEFAULT = DataConverter.default.payload_converter
OURS = BILLING_DATA_CONVERTER.payload_converter


def _payload(stored: dict[str, Any]) -> Payload:
    """A payload as a history's JSON form stores it (base64 fields)."""
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in stored.get("metadata", {}).items()},
        data=base64.b64decode(stored.get("data", "")),
    )


def _typed_payloads() -> list[tuple[str, Payload, type]]:
    found: list[tuple[str, Payload, type]] = []
    for path in sorted(HISTORIES.glob("*.json")):
        for event in json.loads(path.read_text())["history"]["events"]:
            started = event.get("workflowExecutionStartedEventAttributes")
            completed = event.get("workflowExecutionCompletedEventAttributes")
            continued = event.get("workflowExecutionContinuedAsNewEventAttributes")
            marker = event.get("markerRecordedEventAttributes")
            where = f"{path.stem}#{event['eventId']}"
            for attributes, key, hint in (
                (started, "input", CallInput),
                (continued, "input", CallInput),
                (completed, "result", CallResult),
            ):
                if attributes and key in attributes:
                    found.append((where, _payload(attributes[key]["payloads"][0]), hint))
            if marker and marker.get("markerName") == "core_local_activity":
                details = marker["details"]
                data = json.loads(_payload(details["data"]["payloads"][0]).data)
                if "result" in details and data["activity_type"] in RESULT_TYPES:
                    result = _payload(details["result"]["payloads"][0])
                    found.append((where, result, RESULT_TYPES[data["activity_type"]]))
    return found


TYPED_PAYLOADS = _typed_payloads()


def test_the_stored_histories_give_every_kind_of_payload() -> None:
    assert {hint for _, _, hint in TYPED_PAYLOADS} >= {
        CallInput,
        CallResult,
        CallAuthorization,
        CheckpointedUsage,
        FinalizedCall,
    }


@pytest.mark.parametrize(("where", "payload", "hint"), TYPED_PAYLOADS, ids=lambda v: "")
def test_decodes_what_the_default_decodes(where: str, payload: Payload, hint: type) -> None:
    expected = DEFAULT.from_payloads([payload], [hint])[0]
    assert OURS.from_payloads([payload], [hint])[0] == expected, where


@dataclass
class Shape:
    name: str
    count: int = 0
    tags: list[str] = field(default_factory=list)
    inner: Shape | None = None
    derived: str = field(default="", init=False)


def test_defaults_unknown_keys_init_false_fields_and_nesting_as_the_default() -> None:
    wire = {
        "name": "a",
        "unknown": 1,
        "derived": "kept",
        "inner": {"name": "b", "tags": ["x"]},
    }
    payload = DEFAULT.to_payloads([wire])[0]
    ours = OURS.from_payloads([payload], [Shape])[0]
    assert ours == DEFAULT.from_payloads([payload], [Shape])[0]
    assert ours.inner == Shape("b", tags=["x"]) and ours.derived == "kept"


@pytest.mark.parametrize("wire", [{"count": 1}, {"name": "a", "count": "x"}, {"name": ["a"]}])
def test_errs_where_the_default_errs(wire: dict[str, Any]) -> None:
    payload = DEFAULT.to_payloads([wire])[0]
    with pytest.raises(TypeError) as default_error:
        DEFAULT.from_payloads([payload], [Shape])
    with pytest.raises(TypeError) as our_error:
        OURS.from_payloads([payload], [Shape])
    assert str(our_error.value) == str(default_error.value)


def test_encodes_as_the_default() -> None:
    value = Shape("a", 2, ["t"], Shape("b"))
    assert OURS.to_payloads([value]) == DEFAULT.to_payloads([value])
