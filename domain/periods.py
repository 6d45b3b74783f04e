"""Calendar periods in the billing time zone (Asia/Kolkata): "this month", a statement month,
`from`/`to` dates of the history filters. Pure: the caller passes `now`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BILLING_TZ_NAME = "Asia/Kolkata"
BILLING_TZ = ZoneInfo(BILLING_TZ_NAME)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class FilterError(ValueError):
    """Bad period or filter input; `code` is the stable problem code (a 422)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; None is open-ended."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def period(self) -> Period:
        return Period(day_start(self.first_day), day_start(self.next().first_day))

    @classmethod
    def of(cls, moment: datetime) -> Month:
        local = moment.astimezone(BILLING_TZ)
        return cls(local.year, local.month)


def day_start(day: date) -> datetime:
    """Midnight of `day` in Asia/Kolkata, as a UTC time."""
    return datetime.combine(day, time(0), BILLING_TZ).astimezone(UTC)


def local_today(now: datetime) -> date:
    return now.astimezone(BILLING_TZ).date()


def month_start(now: datetime) -> datetime:
    """The first moment of `now`'s calendar month in Asia/Kolkata (a local time)."""
    local = now.astimezone(BILLING_TZ)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def parse_day(text: str, field: str) -> date:
    if not _DAY.match(text):
        raise FilterError(f"{field} must be a date YYYY-MM-DD, got {text!r}", "invalid_date")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise FilterError(f"{field} is not a calendar date: {text!r}", "invalid_date") from exc


def parse_month(text: str, now: datetime) -> Month:
    """`YYYY-MM`, not after the current month (there is nothing to show yet)."""
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise FilterError(f"month must be YYYY-MM, got {text!r}", "invalid_month")
    month = Month(int(match.group(1)), int(match.group(2)))
    if month.first_day > local_today(now):
        raise FilterError(f"{month} is in the future", "month_in_future")
    return month


def date_range(first: date | None, last: date | None, now: datetime) -> Period:
    """`from`/`to` dates (both inclusive, Asia/Kolkata) as a UTC [start, end)."""
    if first is not None and last is not None and first > last:
        raise FilterError(f"from ({first}) is after to ({last})", "invalid_date_range")
    if first is not None and first > local_today(now):
        raise FilterError(f"from ({first}) is in the future", "date_in_future")
    return Period(
        day_start(first) if first is not None else None,
        day_start(last + timedelta(days=1)) if last is not None else None,
    )
