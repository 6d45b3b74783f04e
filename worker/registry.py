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
from activities.refund_parts import RefundPartActivities
from activities.refunds import RefundActivities
from adapters.payments.gateway import SandboxPaymentGateway
from adapters.payments.refund_rails import SandboxRefundRails
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
        *refund_part_activities(deps).activities(),
        *ReconcilerActivities(deps).activities(),
        *PaymentActivities(deps).activities(),
    ]


def refund_part_activities(deps: WorkerDeps) -> RefundPartActivities:
    """The refund parts' activities; without rails of their own they use the sandbox gateway."""
    rails = deps.refund_rails
    if rails is None:
        assert isinstance(deps.payment_gateway, SandboxPaymentGateway)
        rails = SandboxRefundRails(deps.payment_gateway)
    return RefundPartActivities(
        deps.session_factory,
        deps.client,
        rails,
        task_queue=deps.task_queue,
        payout_fund_account_id=deps.payout_fund_account_id,
    )
