"""Periods in Asia/Kolkata: statement months, from/to dates, and their refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.periods import FilterError, Month, date_range, parse_day, parse_month

NOW = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)  # 29 Nov 01:30 in Kolkata


def test_a_month_runs_from_kolkata_midnight_to_the_next() -> None:
    period = Month(2026, 11).period()
    assert period.start == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2024, 2).last_day == date(2024, 2, 29)
    assert str(Month(2026, 3)) == "2026-03"


def test_the_month_of_a_moment_is_its_kolkata_month() -> None:
    assert Month.of(datetime(2026, 11, 30, 18, 29, tzinfo=UTC)) == Month(2026, 11)
    assert Month.of(datetime(2026, 11, 30, 18, 30, tzinfo=UTC)) == Month(2026, 12)


def test_dates_are_inclusive_local_days() -> None:
    period = date_range(date(2026, 11, 1), date(2026, 11, 1), NOW)
    assert period.start == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 1, 18, 30, tzinfo=UTC)
    open_ended = date_range(None, None, NOW)
    assert open_ended.start is None and open_ended.end is None
    # "Today" is the Kolkata date: 29 Nov is already today at 20:00 UTC on the 28th.
    assert date_range(date(2026, 11, 29), None, NOW).start is not None


@pytest.mark.parametrize(
    ("first", "last", "code"),
    [
        (date(2026, 11, 10), date(2026, 11, 9), "invalid_date_range"),
        (date(2026, 11, 30), None, "date_in_future"),
    ],
)
def test_bad_ranges_are_refused_with_a_code(first: date, last: date | None, code: str) -> None:
    with pytest.raises(FilterError) as refused:
        date_range(first, last, NOW)
    assert refused.value.code == code


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "26-11-01", "2026-11-1", "x"])
def test_bad_dates_are_invalid_date(text: str) -> None:
    with pytest.raises(FilterError) as refused:
        parse_day(text, "from")
    assert refused.value.code == "invalid_date"


def test_months() -> None:
    assert parse_month("2026-11", NOW) == Month(2026, 11)
    assert parse_month("2020-01", NOW) == Month(2020, 1)
    for text in ("2026-13", "2026-1", "1999-12", "2026-00", "november"):
        with pytest.raises(FilterError) as refused:
            parse_month(text, NOW)
        assert refused.value.code == "invalid_month"
    with pytest.raises(FilterError) as future:
        parse_month("2026-12", NOW)
    assert future.value.code == "month_in_future"
