"""History filter values: known ones pass (repeated or comma-separated), unknown ones are
refused with `invalid_filter`."""

from __future__ import annotations

import pytest

from domain.history import (
    TransactionKind,
    call_channels,
    call_id_search,
    call_outcomes,
    transaction_kinds,
)
from domain.periods import FilterError


def test_known_values_repeated_or_comma_separated() -> None:
    assert transaction_kinds(["topup", "call_charge,call_adjustment"]) == {
        "topup",
        "call_charge",
        "call_adjustment",
    }
    assert call_channels(["phone", " web "]) == {"phone", "web"}
    assert call_outcomes(["no_answer,refused"]) == {"no_answer", "refused"}
    assert transaction_kinds([]) == frozenset()
    assert "call_adjustment" in {k.value for k in TransactionKind}


@pytest.mark.parametrize(
    ("parse", "values"),
    [
        (transaction_kinds, ["topup,bonus"]),
        (call_channels, ["fax"]),
        (call_outcomes, ["Completed"]),  # values are case-sensitive
    ],
)
def test_unknown_values_are_invalid_filter(parse: object, values: list[str]) -> None:
    with pytest.raises(FilterError) as refused:
        parse(values)  # type: ignore[operator]
    assert refused.value.code == "invalid_filter"


def test_call_id_search() -> None:
    assert call_id_search("  call-1 ") == "call-1"
    assert call_id_search("") is None
    with pytest.raises(FilterError):
        call_id_search("x" * 201)
