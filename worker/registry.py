"""Every workflow and activity the `billing` worker runs, in one place.

Each unit appends its workflows to WORKFLOWS and its activities in build_activities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from activities.calls import CallActivities
from activities.refunds import build_account_and_refund_activities
from ledger.policy import LedgerPolicy
from workflows.accounts import AccountWorkflow
from workflows.calls import CallBillingWorkflow
from workflows.refunds import RefundWorkflow

TASK_QUEUE = "billing"


@dataclass
class WorkerDeps:
    session_factory: sessionmaker[Session]
    policy: LedgerPolicy
    client: Client
    extras: dict[str, Any]  # e.g. "email_sender", "payment_gateway"


WORKFLOWS: list[type] = [CallBillingWorkflow, AccountWorkflow, RefundWorkflow]


def build_activities(deps: WorkerDeps) -> list[Callable[..., Any]]:
    calls = CallActivities(deps)
    activities: list[Callable[..., Any]] = [calls.authorize, calls.finalize]
    activities += build_account_and_refund_activities(deps)
    return activities
