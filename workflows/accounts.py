"""`AccountWorkflow` (`account_workflow_id(account_id)`; names and shapes in domain.contracts):
one long-running workflow per account that hears
of every committed balance change (signal `balance_changed` carrying a `BalanceSnapshot`, sent by
`adapters.balance_events.notify_balance_changed` with signal-with-start) and sends the
low-balance email once per crossing.

- Armed while `available >= threshold`. A snapshot with `available < threshold` while armed is a
  crossing: disarm and send one alert. A snapshot back at or above the threshold re-arms.
- Snapshots older than the newest seen (`version` is monotonically increasing per account) are
  ignored; the same version again is harmless (re-evaluating it changes nothing).
- The alert's dedupe key is `low-balance:<account_id>:<version of the crossing snapshot>`, stable
  across activity retries, continue-as-new and even a restarted workflow; the activity reserves it
  in `email_log` before sending (at most once per key).
- Auto-recharge (while the snapshot carries `auto_recharge_threshold_paisa`): the same armed/
  crossing rule on `available − reserved` (`domain.payments.auto_recharge_step`); a crossing runs
  `auto_recharge_start` once (its checkout is keyed by the crossing's version), which creates a
  gateway order and hands it to `CheckoutWorkflow` for the recurring charge.
- State is carried through continue-as-new, which happens after `continue_as_new_after_signals`
  signals (signals do not count towards `is_continue_as_new_suggested`) or when the server
  suggests it, once no alert is in flight and all handlers have finished.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        ACCOUNT_WORKFLOW,
        AUTO_RECHARGE_ACTIVITY,
        BALANCE_CHANGED_SIGNAL,
        LOW_BALANCE_ALERT_ACTIVITY,
        STATUS_QUERY,
        EmailOutcome,
    )
    from domain.contracts.accounts import (
        AccountState,
        AccountStatus,
        AccountWorkflowInput,
        LowBalanceAlert,
    )
    from domain.contracts.payments import AutoRechargeRequest, AutoRechargeStarted
    from domain.ledger_types import BalanceSnapshot
    from domain.payments import auto_recharge_step

AUTO_RECHARGE_PATCH = "auto-recharge"


def low_balance_dedupe_key(account_id: str, crossing_version: int) -> str:
    return f"low-balance:{account_id}:{crossing_version}"


@workflow.defn(name=ACCOUNT_WORKFLOW)
class AccountWorkflow:
    @workflow.init
    def __init__(self, input: AccountWorkflowInput) -> None:
        self._account_id = input.account_id
        self._state = input.state or AccountState()
        self._limit = max(1, input.continue_as_new_after_signals)
        self._signals = 0

    @workflow.signal(name=BALANCE_CHANGED_SIGNAL)
    def balance_changed(self, snapshot: BalanceSnapshot) -> None:
        self._signals += 1
        state = self._state
        if snapshot.account_id != self._account_id or snapshot.version < state.last_version:
            state.stale_ignored += 1
            return
        state.last_version = snapshot.version
        state.paid_paisa = snapshot.paid_paisa
        state.promo_paisa = snapshot.promo_paisa
        state.reserved_paisa = snapshot.reserved_paisa
        available = snapshot.paid_paisa + snapshot.promo_paisa
        state.available_paisa = available
        state.threshold_paisa = snapshot.alert_threshold_paisa
        self._auto_recharge(snapshot)
        if available >= snapshot.alert_threshold_paisa:
            state.armed = True
            return
        if not state.armed:
            return  # still below after an alert: nothing until re-armed
        state.armed = False
        state.crossings += 1
        state.pending_alert = LowBalanceAlert(
            account_id=self._account_id,
            dedupe_key=low_balance_dedupe_key(self._account_id, snapshot.version),
            crossing_version=snapshot.version,
            available_paisa=available,
            paid_paisa=snapshot.paid_paisa,
            promo_paisa=snapshot.promo_paisa,
            threshold_paisa=snapshot.alert_threshold_paisa,
        )

    def _auto_recharge(self, snapshot: BalanceSnapshot) -> None:
        threshold = snapshot.auto_recharge_threshold_paisa
        state = self._state
        if threshold is None:
            state.recharge_armed = True  # off: the next time it is on starts armed
            return
        step = auto_recharge_step(
            armed=state.recharge_armed,
            available_paisa=snapshot.available_paisa,
            reserved_paisa=snapshot.reserved_paisa,
            threshold_paisa=threshold,
        )
        state.recharge_armed = step.armed
        if step.crossed:
            state.recharge_crossings += 1
            state.pending_recharge = AutoRechargeRequest(
                account_id=self._account_id,
                crossing_version=snapshot.version,
                spendable_paisa=snapshot.available_paisa - snapshot.reserved_paisa,
                threshold_paisa=threshold,
            )

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> AccountStatus:
        return AccountStatus(self._account_id, self._state, self._signals)

    def _continue_as_new_due(self) -> bool:
        return self._signals >= self._limit or workflow.info().is_continue_as_new_suggested()

    @workflow.run
    async def run(self, input: AccountWorkflowInput) -> None:
        while True:
            await workflow.wait_condition(
                lambda: (
                    self._state.pending_alert is not None
                    or self._state.pending_recharge is not None
                    or self._continue_as_new_due()
                )
            )
            recharge = self._state.pending_recharge
            if recharge is not None:
                self._state.pending_recharge = None
                if workflow.patched(AUTO_RECHARGE_PATCH):
                    await self._recharge(recharge)
                continue
            alert = self._state.pending_alert
            if alert is not None:
                if self._state.armed:
                    # Back above the threshold before the email went out: nothing to say.
                    self._state.pending_alert = None
                    continue
                await self._send(alert)
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._state.pending_alert is not None or self._state.pending_recharge is not None:
                continue
            workflow.continue_as_new(
                AccountWorkflowInput(
                    account_id=self._account_id,
                    state=self._state,
                    continue_as_new_after_signals=self._limit,
                )
            )

    async def _recharge(self, request: AutoRechargeRequest) -> None:
        try:
            await workflow.execute_activity(
                AUTO_RECHARGE_ACTIVITY,
                request,
                result_type=AutoRechargeStarted,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1),
                ),
            )
        except ActivityError as exc:
            workflow.logger.warning("auto-recharge for %s not started: %s", self._account_id, exc)

    async def _send(self, alert: LowBalanceAlert) -> None:
        state = self._state
        try:
            await workflow.execute_activity(
                LOW_BALANCE_ALERT_ACTIVITY,
                alert,
                result_type=EmailOutcome,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(hours=6),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=5),
                ),
            )
            state.alerts_sent += 1
            state.sent_alert_keys = [*state.sent_alert_keys[-9:], alert.dedupe_key]
        except ActivityError as exc:
            state.alerts_failed += 1
            workflow.logger.warning("low-balance alert %s not sent: %s", alert.dedupe_key, exc)
        if state.pending_alert is not None and state.pending_alert.dedupe_key == alert.dedupe_key:
            state.pending_alert = None
