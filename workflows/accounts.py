"""`AccountWorkflow` (`account_workflow_id(account_id)`; names and shapes in domain.contracts):
one long-running workflow per account that sends its low-balance emails, one per crossing,
retrying through SendGrid outages.

- The ledger decides crossings (ledger.alerts: in the transaction of the balance change, against
  the account's threshold and its armed flag) and records each in the alert outbox. The row
  reaches this workflow as the signal `low_balance` (a `LowBalanceAlert`, signal-with-start by
  `adapters.balance_events`), right after the commit and again from the reconciler while it is
  undelivered. Alerts are sent in order; a key already queued or among the last sent is skipped.
- The email activity reserves the alert's dedupe key (`low-balance:<account_id>:<version>`) in
  `email_log` before sending and marks the outbox row delivered.
- Legacy: workflows started before the outbox heard of every balance change (signal
  `balance_changed`, a `BalanceSnapshot`) and decided crossings themselves (`pending_alert`).
  Nothing sends that signal now; its handler stays, unchanged in what it commands, so those
  workflows and their histories replay.
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
    from domain.balance_rules import low_balance_step
    from domain.contracts import (
        ACCOUNT_WORKFLOW,
        BALANCE_CHANGED_SIGNAL,
        LOW_BALANCE_ALERT_ACTIVITY,
        LOW_BALANCE_SIGNAL,
        STATUS_QUERY,
        EmailOutcome,
        low_balance_alert_key,
    )
    from domain.contracts.accounts import (
        AccountState,
        AccountStatus,
        AccountWorkflowInput,
        LowBalanceAlert,
    )
    from domain.ledger_types import BalanceSnapshot

SENT_KEYS_KEPT = 10
low_balance_dedupe_key = low_balance_alert_key  # (the name the tests and older code use)


@workflow.defn(name=ACCOUNT_WORKFLOW)
class AccountWorkflow:
    @workflow.init
    def __init__(self, input: AccountWorkflowInput) -> None:
        self._account_id = input.account_id
        self._state = input.state or AccountState()
        self._limit = max(1, input.continue_as_new_after_signals)
        self._signals = 0

    @workflow.signal(name=LOW_BALANCE_SIGNAL)
    def low_balance(self, alert: LowBalanceAlert) -> None:
        self._signals += 1
        state = self._state
        queued = {queued.dedupe_key for queued in state.queued_alerts}
        if (
            alert.account_id != self._account_id
            or alert.dedupe_key in queued
            or alert.dedupe_key in state.sent_alert_keys
        ):
            state.duplicate_alerts += 1
            return
        state.crossings += 1
        state.queued_alerts.append(alert)

    @workflow.signal(name=BALANCE_CHANGED_SIGNAL)
    def balance_changed(self, snapshot: BalanceSnapshot) -> None:
        """Legacy (see the module docstring)."""
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
        step = low_balance_step(
            armed=state.armed,
            available_paisa=available,
            alert_threshold_paisa=snapshot.alert_threshold_paisa,
        )
        state.armed = step.armed
        if not step.crossed:
            return
        state.crossings += 1
        state.pending_alert = LowBalanceAlert(
            account_id=self._account_id,
            dedupe_key=low_balance_alert_key(self._account_id, snapshot.version),
            crossing_version=snapshot.version,
            available_paisa=available,
            paid_paisa=snapshot.paid_paisa,
            promo_paisa=snapshot.promo_paisa,
            threshold_paisa=snapshot.alert_threshold_paisa,
        )

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> AccountStatus:
        return AccountStatus(self._account_id, self._state, self._signals)

    def _continue_as_new_due(self) -> bool:
        return self._signals >= self._limit or workflow.info().is_continue_as_new_suggested()

    def _has_work(self) -> bool:
        return self._state.pending_alert is not None or bool(self._state.queued_alerts)

    @workflow.run
    async def run(self, input: AccountWorkflowInput) -> None:
        state = self._state
        while True:
            await workflow.wait_condition(lambda: self._has_work() or self._continue_as_new_due())
            legacy = state.pending_alert
            if legacy is not None:
                if state.armed:
                    # Back above the threshold before the email went out: nothing to say.
                    state.pending_alert = None
                    continue
                await self._send(legacy)
                if state.pending_alert is not None and state.pending_alert.dedupe_key == (
                    legacy.dedupe_key
                ):
                    state.pending_alert = None
                continue
            if state.queued_alerts:
                alert = state.queued_alerts[0]
                await self._send(alert)
                state.queued_alerts.remove(alert)
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._has_work():
                continue
            workflow.continue_as_new(
                AccountWorkflowInput(
                    account_id=self._account_id,
                    state=state,
                    continue_as_new_after_signals=self._limit,
                )
            )

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
            state.sent_alert_keys = [*state.sent_alert_keys[1 - SENT_KEYS_KEPT :], alert.dedupe_key]
        except ActivityError as exc:
            # The outbox row stays undelivered: the reconciler hands it over again.
            state.alerts_failed += 1
            workflow.logger.warning("low-balance alert %s not sent: %s", alert.dedupe_key, exc)
