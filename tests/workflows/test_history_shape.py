"""The history a call leaves in Temporal: a run started by the clients (with the call's search
attributes and the `billing_shape` memo) records no patch marker and upserts only CallOutcome;
a run started without the memo, as clients before it did, records the `signal-checkpoints`
patch as before, and both checkpoint at usage signals."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from domain.contracts import call_workflow_id
from orchestrator_client import BillingClient, call_search_attributes
from tests.support.calls import Ledger, start_call_workflow, uid
from tests.workflows.test_running_holds import checkpoint_batches, docs_calls


async def play(billing: BillingClient, ledger: Ledger, call_id: str) -> list[str]:
    """Two reports 1.1 s apart (the second checkpoints both in its own task), then hangup; the
    marker names and search attributes the history records."""
    await billing.report_usage(call_id, {"events": docs_calls(1, "a")})
    await asyncio.sleep(1.1)
    await billing.report_usage(call_id, {"events": docs_calls(1, "b")})
    await asyncio.sleep(0.3)
    assert checkpoint_batches(ledger, call_id) == 1
    await billing.hangup(call_id, "completed")
    await billing.result(call_id)
    handle: WorkflowHandle[object, object] = billing.client.get_workflow_handle(
        call_workflow_id(call_id)
    )
    recorded: list[str] = []
    for event in (await handle.fetch_history()).events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            recorded.append(event.marker_recorded_event_attributes.marker_name)
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            recorded.extend(f"upsert {key}" for key in fields.indexed_fields)
    return recorded


async def test_a_call_started_by_the_client_records_no_patch_marker(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=100_000, promo=0)
    call_id = uid("call")
    assert (await billing.authorize(call_id, account_id, "phone")).authorized
    recorded = await play(billing, ledger, call_id)
    assert "core_patch" not in recorded
    assert [r for r in recorded if r.startswith("upsert")] == ["upsert CallOutcome"]


async def test_a_call_started_without_the_shape_memo_records_the_patch_as_before(
    billing: BillingClient, ledger: Ledger
) -> None:
    account_id = ledger.account(paid=100_000, promo=0)
    call_id = uid("call")
    handle = await start_call_workflow(
        billing.client,
        billing.task_queue,
        call_id,
        account_id,
        "phone",
        search_attributes=call_search_attributes(account_id, "phone"),
    )
    assert (await handle.execute_update("authorize", None))["authorized"]
    recorded = await play(billing, ledger, call_id)
    assert recorded.count("core_patch") == 1
    assert "upsert TemporalChangeVersion" in recorded
