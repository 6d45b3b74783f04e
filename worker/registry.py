"""Every workflow and activity the billing worker runs, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.accounts import AccountActivities
from activities.calls import CallActivities
from activities.deps import WorkerDeps
from activities.orphaned_calls import OrphanedCallActivities
from activities.payments import PaymentActivities
from activities.reconciler import ReconcilerActivities
from activities.refunds import RefundActivities
from workflows.accounts import AccountWorkflow
from workflows.call_late_usage import CallLateUsageWorkflow
from workflows.calls import CallBillingWorkflow
from workflows.checkouts import AutoRechargeWorkflow, CheckoutWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.refunds import RefundWorkflow

WORKFLOWS: list[type] = [
    CallBillingWorkflow,
    CallLateUsageWorkflow,
    AccountWorkflow,
    RefundWorkflow,
    ReconcilerWorkflow,
    CheckoutWorkflow,
    AutoRechargeWorkflow,
]


def build_activities(deps: WorkerDeps) -> list[Callable[..., Any]]:
    accounts = AccountActivities(
        deps.session_factory,
        deps.email_sender,
        email_from=deps.email_from,
        dashboard_url=deps.dashboard_url,
    )
    refunds = RefundActivities(
        deps.session_factory,
        deps.client,
        deps.payment_gateway,
        deps.email_sender,
        task_queue=deps.task_queue,
        email_from=deps.email_from,
    )
    return [
        *CallActivities(deps).activities(),
        *OrphanedCallActivities(deps).activities(),
        *accounts.activities(),
        *refunds.activities(),
        *ReconcilerActivities(deps).activities(),
        *PaymentActivities(deps).activities(),
    ]
