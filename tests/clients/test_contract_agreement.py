"""The client's vendored contract (clients/python/.../contract.py) agrees with the server's
`domain.contracts`: constants, ids, enums, every dataclass field (name, type, default), and the
wire form both sides decode."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from osmtalk_billing_client import contract as vendored
from temporalio.converter import DataConverter

from domain import channels, contracts, rating
from domain.contracts import call_usage, calls

SERVER_TYPES: dict[str, Any] = {
    "AuthorizeRequest": calls.AuthorizeRequest,
    "AuthorizeResult": calls.AuthorizeResult,
    "UsageReport": calls.UsageReport,
    "UsageBatch": calls.UsageBatch,
    "Hangup": calls.Hangup,
    "CallStart": calls.CallStart,
    "RejectedEvent": calls.RejectedEvent,
    "UsageLine": rating.UsageLine,
    "CallBreakdown": calls.CallBreakdown,
    "CallStatus": calls.CallStatus,
    "CallResult": calls.CallResult,
    "LateUsageStart": call_usage.LateUsageStart,
    "LateUsageResult": call_usage.LateUsageResult,
}


@pytest.mark.parametrize(
    "name",
    [
        "TASK_QUEUE",
        "CALL_WORKFLOW",
        "AUTHORIZE_UPDATE",
        "USAGE_SIGNAL",
        "HANGUP_SIGNAL",
        "STATUS_QUERY",
        "CALL_LATE_USAGE_WORKFLOW",
        "LATE_USAGE_UPDATE",
        "CALL_ID_PATTERN",
        "MAX_EVENTS_PER_SIGNAL",
        "ACCOUNT_ID_ATTRIBUTE",
        "CALL_CHANNEL_ATTRIBUTE",
        "CALL_SHAPE_MEMO",
        "CALL_SHAPE",
    ],
)
def test_constants_agree(name: str) -> None:
    assert getattr(vendored, name) == getattr(contracts, name)


def test_ids_agree() -> None:
    for call_id in ("c-1", "call-2026-11-28-0001", "x@y:z.1"):
        assert vendored.call_workflow_id(call_id) == contracts.call_workflow_id(call_id)
    assert vendored.late_usage_workflow_id("c-1") == contracts.late_usage_workflow_id("c-1")
    assert vendored.authorize_update_id("acc_1", "phone") == contracts.authorize_update_id(
        "acc_1", "phone"
    )


@pytest.mark.parametrize(
    ("client_enum", "server_enum"),
    [
        (vendored.Channel, channels.Channel),
        (vendored.Component, channels.Component),
        (vendored.Outcome, channels.Outcome),
        (vendored.CallState, contracts.CallState),
    ],
)
def test_enums_agree(client_enum: Any, server_enum: Any) -> None:
    assert {m.name: m.value for m in client_enum} == {m.name: m.value for m in server_enum}


def test_rule_tables_agree() -> None:
    assert {o.value for o in vendored.HANGUP_OUTCOMES} == {
        o.value for o in channels.HANGUP_OUTCOMES
    }
    assert {c.value: u for c, u in vendored.COMPONENT_UNITS.items()} == {
        c.value: u for c, u in channels.COMPONENT_UNITS.items()
    }


def _shape(cls: Any) -> list[tuple[str, str, object]]:
    return [
        (f.name, str(f.type), f.default if f.default is not dataclasses.MISSING else "required")
        for f in dataclasses.fields(cls)
    ]


@pytest.mark.parametrize("name", sorted(SERVER_TYPES))
def test_dataclasses_agree(name: str) -> None:
    client_cls, server_cls = getattr(vendored, name), SERVER_TYPES[name]
    assert _shape(client_cls) == _shape(server_cls)
    frozen = client_cls.__dataclass_params__.frozen
    assert frozen == server_cls.__dataclass_params__.frozen


async def test_what_the_server_sends_the_client_decodes_and_back() -> None:
    converter = DataConverter.default
    breakdown = calls.CallBreakdown(40, 50, 220, 30, 340, 102, 442)
    status = calls.CallStatus(
        call_id="c-1",
        account_id="acc_1",
        channel="phone",
        state=contracts.CallState.FINALIZED,
        outcome=channels.Outcome.COMPLETED,
        hangup_reason=None,
        started_at="2026-11-28T10:00:00+00:00",
        ended_at="2026-11-28T10:01:00+00:00",
        usage=[rating.UsageLine("sip", "plivo/in-outbound", "seconds", "60")],
        usage_event_count=4,
        duplicate_event_count=1,
        rejected_event_count=1,
        rejected_events=[calls.RejectedEvent("e-9", "unknown_sku", "no such sku")],
        breakdown=breakdown,
        rate_card_version=1,
        margin_rate="0.30",
        authorized=True,
        runs=1,
    )
    result = calls.CallResult.of(
        status,
        calls.AuthorizeResult(True, None, 1000, 55000, 1),
        charged=True,
        transaction_id=7,
    )
    (payload,) = await converter.encode([result])
    (decoded,) = await converter.decode([payload], [vendored.CallResult])
    assert dataclasses.asdict(decoded) == dataclasses.asdict(result)
    assert isinstance(decoded.usage[0], vendored.UsageLine)
    assert decoded.state is vendored.CallState.FINALIZED
    report = vendored.UsageReport("e-1", vendored.Component.LLM, "openai/gpt-4o", 10, "2.5")
    assert calls.usage_events_from_wire(report.to_wire()) == [report.to_wire()]
    (payload,) = await converter.encode([report])
    (back,) = await converter.decode([payload], [calls.UsageReport])
    assert back == calls.UsageReport("e-1", channels.Component.LLM, "openai/gpt-4o", 10, "2.5")


def test_the_call_id_rule_is_the_apis() -> None:
    """The client accepts exactly the call ids the HTTP API accepts."""
    from osmtalk_billing_client import InvalidRequest, check_call_id
    from pydantic import TypeAdapter, ValidationError

    from api.calls.schemas import CallId

    api = TypeAdapter(CallId)
    for good in ("c-1", "A" * 200, "call-2026-11-28-0001", "x@y:z.1_2"):
        assert api.validate_python(good) == check_call_id(good) == good
    for bad in ("", "-c", "a b", "A" * 201, "c/1", "ç", "c-1\n", "\nc-1"):
        with pytest.raises(ValidationError):
            api.validate_python(bad)
        with pytest.raises(InvalidRequest):
            check_call_id(bad)
