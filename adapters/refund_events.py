"""The one way a gateway's refund webhook reaches its refund: `refund.processed` /
`refund.failed` carry our refund id and part number in the gateway refund's `notes` (the
refund workflow puts them there), and become the signal `refund_part_event` of
`RefundWorkflow` (`refund_workflow_id(refund_id)`).

A refund whose workflow has finished (every part was already settled, e.g. by the workflow's
own poll) or that is not ours has nobody to tell: `False`, the event stays stored. Any other
failure raises, so the API answers 503 and the gateway delivers again."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.contracts import REFUND_PART_EVENT_SIGNAL, refund_workflow_id
from domain.contracts.refunds import RefundPartEvent

TIMEOUT_SECONDS = 5.0
_REFUND_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # our refund ids (`ref_` + hex; tests: any)
_STATUS = {"refund.processed": "processed", "refund.failed": "failed"}


@dataclass(frozen=True)
class RefundPartNotice:
    refund_id: str
    event: RefundPartEvent


def refund_part_notice(
    body: Mapping[str, Any], event_row_id: int | None
) -> RefundPartNotice | None:
    """Our refund and part from a `refund.*` event's refund entity, or None (not one of ours)."""
    status = _STATUS.get(str(body.get("event")))
    payload = body.get("payload")
    refund = payload.get("refund") if isinstance(payload, Mapping) else None
    entity = refund.get("entity") if isinstance(refund, Mapping) else None
    if status is None or not isinstance(entity, Mapping):
        return None
    notes = entity.get("notes")
    if not isinstance(notes, Mapping):
        return None
    refund_id, part_no = notes.get("refund_id"), notes.get("part_no")
    if not isinstance(refund_id, str) or not _REFUND_ID.fullmatch(refund_id):
        return None
    if not isinstance(part_no, str) or not part_no.isdigit() or not 0 < int(part_no) < 1000:
        return None
    gateway_id = entity.get("id")
    return RefundPartNotice(
        refund_id,
        RefundPartEvent(
            part_no=int(part_no),
            status=status,
            gateway_reference=gateway_id if isinstance(gateway_id, str) else None,
            reason="the card issuer refused the refund" if status == "failed" else None,
            event_row_id=event_row_id,
        ),
    )


async def signal_refund_part(
    client: Client, notice: RefundPartNotice, *, timeout: float = TIMEOUT_SECONDS
) -> bool:
    handle = client.get_workflow_handle(refund_workflow_id(notice.refund_id))
    try:
        await asyncio.wait_for(handle.signal(REFUND_PART_EVENT_SIGNAL, notice.event), timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # finished, or never ours
            return False
        raise
    return True
