"""The typed orchestrator client against the real dev server: errors are typed and clear."""

from __future__ import annotations

import asyncio

import pytest

from domain.default_rate_card import TYPICAL_PHONE_CALL_USAGE
from orchestrator_client import (
    BillingClient,
    CallNotFound,
    InvalidRequest,
    UsageRejected,
)
from tests.support.calls import Ledger, uid


async def test_unknown_call_raises_call_not_found(billing: BillingClient) -> None:
    missing = uid("nope")
    with pytest.raises(CallNotFound):
        await billing.status(missing)
    with pytest.raises(CallNotFound):
        await billing.report_usage(missing, TYPICAL_PHONE_CALL_USAGE[0])
    with pytest.raises(CallNotFound):
        await billing.hangup(missing, "completed")
    with pytest.raises(CallNotFound):
        await billing.result(missing)


async def test_bad_input_is_refused_client_side(billing: BillingClient) -> None:
    with pytest.raises(InvalidRequest) as channel_error:
        await billing.authorize(uid("call"), "acc_x", "pigeon")
    assert channel_error.value.code == "invalid_channel"
    with pytest.raises(InvalidRequest):
        await billing.authorize("", "acc_x", "phone")
    with pytest.raises(InvalidRequest):
        await billing.authorize(uid("call"), "acc_x", "phone", started_at="yesterday")
    with pytest.raises(InvalidRequest):
        await billing.hangup("c", "completed", ended_at="soon")
    with pytest.raises(UsageRejected):
        await billing.report_usage("c", {"component": "llm", "sku": "x", "input_tokens": 1})
    with pytest.raises(UsageRejected) as component_error:
        await billing.report_usage("c", [{"event_id": "e", "component": "video"}])
    assert component_error.value.code == "invalid_component"
    with pytest.raises(UsageRejected):
        await billing.report_usage("c", {"events": []})
    with pytest.raises(InvalidRequest) as outcome_error:
        await billing.hangup("c", "exploded")
    assert outcome_error.value.code == "invalid_outcome"


async def test_concurrent_authorizes_place_one_hold_and_agree(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=3000, promo=0)
    call_id = uid("call")
    decisions = await asyncio.gather(
        *(billing.authorize(call_id, account_id, "phone") for _ in range(5))
    )
    assert all(d == decisions[0] for d in decisions) and decisions[0].authorized
    assert ledger.balance(account_id).reserved_paisa == 1000
    with pytest.raises(InvalidRequest) as conflict:  # same call id, another account
        await billing.authorize(call_id, "acc_someone_else", "phone")
    assert conflict.value.code == "conflict"
    await billing.hangup(call_id, "busy")
    await billing.result(call_id)
    with pytest.raises(InvalidRequest) as closed_conflict:
        await billing.authorize(call_id, account_id, "web")
    assert closed_conflict.value.code == "conflict"


async def test_after_the_end_usage_is_late_usage_and_hangup_is_harmless(
    billing: BillingClient, ledger: Ledger
) -> None:
    """Usage after the end is late usage (tests/workflows/test_late_usage.py): one that does not
    fit the call is rejected at once and changes nothing; `CallEnded` after the window."""
    account_id = ledger.account(paid=3000, promo=0)
    call_id = uid("call")
    await billing.authorize(call_id, account_id, "chat")
    await billing.report_usage(call_id, [TYPICAL_PHONE_CALL_USAGE[0]])
    await billing.hangup(call_id, "completed")
    result = await billing.result(call_id)
    assert result.breakdown.total_paisa == 52  # 40 llm + 12 margin
    with pytest.raises(UsageRejected) as late_stt:  # a chat call has no stt
        await billing.report_usage(call_id, TYPICAL_PHONE_CALL_USAGE[1])
    assert late_stt.value.code == "invalid_component"
    await billing.hangup(call_id, "failed")
    status = await billing.status(call_id)
    assert status.outcome == "completed" and status.state == "finalized"
    assert ledger.balance(account_id).paid_paisa == 3000 - 52
