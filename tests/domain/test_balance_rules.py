"""The pure balance rules of contract §2: refusal, hold size, refundable amount, low-balance
crossing. The ledger, the API and the dashboard all call these; here they are pinned alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.balance_rules import (
    AlertStep,
    below_alert_threshold,
    hold_paisa,
    is_refused,
    low_balance_step,
    refundable_paisa,
    running_hold_paisa,
    spendable_paisa,
)

paisa = st.integers(min_value=-(10**9), max_value=10**9)


@pytest.mark.parametrize(
    ("available", "reserved", "minimum", "refused"),
    [
        (1000, 0, 1000, False),  # exactly the minimum is enough
        (999, 0, 1000, True),
        (2000, 1000, 1000, False),  # a running call's hold counts against new work
        (2000, 1001, 1000, True),
        (0, 0, 0, False),
        (-50, 0, 0, True),  # an overdraft refuses even with no minimum
    ],
)
def test_refusal_rule(available: int, reserved: int, minimum: int, refused: bool) -> None:
    assert (
        is_refused(available_paisa=available, reserved_paisa=reserved, min_balance_paisa=minimum)
        is refused
    )


@given(paisa, paisa, paisa)
def test_refused_exactly_when_spendable_is_below_the_minimum(
    available: int, reserved: int, minimum: int
) -> None:
    refused = is_refused(
        available_paisa=available, reserved_paisa=reserved, min_balance_paisa=minimum
    )
    assert refused == (available - reserved < minimum)
    assert spendable_paisa(available, reserved) == available - reserved


def test_hold_is_the_configured_call_hold_else_the_minimum_balance() -> None:
    assert hold_paisa(call_hold_paisa=2500, min_balance_paisa=1000) == 2500
    assert hold_paisa(call_hold_paisa=None, min_balance_paisa=1000) == 1000
    assert hold_paisa(call_hold_paisa=0, min_balance_paisa=1000) == 1000


@pytest.mark.parametrize(
    ("paid", "promo", "reserved", "refundable"),
    [
        (5000, 0, 0, 5000),
        (5000, 0, 1000, 4000),
        (1000, 0, 1000, 0),
        (500, 0, 1000, 0),
        (-200, 0, 0, 0),
        # Promo pays for calls first: holds up to the promo leave paid refundable ...
        (5000, 2000, 1500, 5000),
        (5000, 2000, 3000, 4000),
        # ... and running holds past the balance leave nothing.
        (5000, 2000, 9000, 0),
    ],
)
def test_refundable_is_paid_nobody_has_a_claim_on(
    paid: int, promo: int, reserved: int, refundable: int
) -> None:
    assert refundable_paisa(paid_paisa=paid, promo_paisa=promo, reserved_paisa=reserved) == (
        refundable
    )


def test_running_hold_follows_the_cost_and_never_shrinks_below_the_authorized_hold() -> None:
    assert (
        running_hold_paisa(
            authorized_hold_paisa=1000, running_total_paisa=0, min_balance_paisa=1000
        )
        == 1000
    )
    assert (
        running_hold_paisa(
            authorized_hold_paisa=1000, running_total_paisa=442, min_balance_paisa=1000
        )
        == 1442
    )
    assert (
        running_hold_paisa(
            authorized_hold_paisa=2500, running_total_paisa=442, min_balance_paisa=1000
        )
        == 2500
    )


def test_below_alert_threshold_is_strict() -> None:
    assert below_alert_threshold(available_paisa=999, alert_threshold_paisa=1000)
    assert not below_alert_threshold(available_paisa=1000, alert_threshold_paisa=1000)


def test_low_balance_alerts_once_per_crossing_and_rearms_at_the_threshold() -> None:
    threshold = 1000
    armed = True
    crossings = []
    for available in [5000, 900, 800, 1200, 1000, 700, 600, 999]:
        step = low_balance_step(
            armed=armed, available_paisa=available, alert_threshold_paisa=threshold
        )
        armed = step.armed
        crossings.append(step.crossed)
    assert crossings == [False, True, False, False, False, True, False, False]
    assert not armed


def test_low_balance_step_table() -> None:
    below, above = 10, 2000
    assert low_balance_step(armed=True, available_paisa=below, alert_threshold_paisa=1000) == (
        AlertStep(armed=False, crossed=True)
    )
    assert low_balance_step(armed=False, available_paisa=below, alert_threshold_paisa=1000) == (
        AlertStep(armed=False, crossed=False)
    )
    for armed in (True, False):
        assert low_balance_step(
            armed=armed, available_paisa=above, alert_threshold_paisa=1000
        ) == AlertStep(armed=True, crossed=False)
