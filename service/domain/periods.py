"""Commission periods: calendar months ("YYYY-MM") in the program's timezone.

A period runs from the first instant whose local date falls in the month up to, not
including, the first instant of the next month. Boundaries are computed from the zone's
rules (`zoneinfo`), so daylight-saving changes at midnight (Cuba, historically Italy)
are placed where the local calendar really turns.
"""

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "PeriodError",
    "booking_period",
    "has_ended",
    "is_valid_timezone",
    "next_period",
    "parse_period",
    "period_bounds",
    "period_of",
]

MIN_YEAR = 1970
MAX_YEAR = 9999

_PERIOD_TEXT = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")
_LATEST_INSTANT = datetime.max.replace(tzinfo=UTC)


class PeriodError(ValueError):
    """A period or timezone the engine refuses, with a stable machine-readable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    """Whether the name is an IANA timezone key such as "America/New_York" or "UTC"."""
    return isinstance(name, str) and name in _known_timezones()


def _zone(timezone: str) -> ZoneInfo:
    if not is_valid_timezone(timezone):
        raise PeriodError("invalid_timezone", f"unknown timezone {timezone!r}")
    return ZoneInfo(timezone)


def _split(period: str) -> tuple[int, int]:
    match = _PERIOD_TEXT.fullmatch(period) if isinstance(period, str) else None
    if match is None:
        raise PeriodError("invalid_period", f"period {period!r} is not of the form YYYY-MM")
    year, month = int(match["year"]), int(match["month"])
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError("invalid_period", f"period year must be {MIN_YEAR} to {MAX_YEAR}")
    if not 1 <= month <= 12:
        raise PeriodError("invalid_period", "period month must be 01 to 12")
    return year, month


def parse_period(text: str) -> str:
    """A period as given in a URL or body: "YYYY-MM", month 01-12, year 1970-9999."""
    _split(text)
    return text


def period_of(instant: datetime, timezone: str) -> str:
    """The period an instant belongs to: its calendar month in the program's timezone."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    try:
        local = instant.astimezone(_zone(timezone))
    except OverflowError as exc:
        raise PeriodError("invalid_period", "instant is outside the supported range") from exc
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        raise PeriodError("invalid_period", f"instant falls before {MIN_YEAR}")
    return f"{local.year:04d}-{local.month:02d}"


def _month_start(year: int, month: int, zone: ZoneInfo) -> datetime:
    """The first UTC instant whose local (year, month) is at least the given month.

    Local midnight may not exist or may occur twice, so the turn of the month is found by
    bisection over whole seconds: zone offsets and transitions are whole seconds, and an
    offset never exceeds a day, so the answer lies within a day either side of UTC midnight.
    """
    target = (year, month)
    utc_midnight = datetime(year, month, 1, tzinfo=UTC)
    earliest = utc_midnight - timedelta(days=1)

    def reached(seconds: int) -> bool:
        local = (earliest + timedelta(seconds=seconds)).astimezone(zone)
        return (local.year, local.month) >= target

    low, high = 0, 2 * 86_400
    while low < high:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle + 1
    return earliest + timedelta(seconds=low)


def period_bounds(period: str, timezone: str) -> tuple[datetime, datetime]:
    """The period as a half-open UTC interval [start, end).

    `start` is the first instant of the month in the program's timezone and `end` the first
    instant of the next month. The last representable period (9999-12) ends at the largest
    datetime Python can hold.
    """
    year, month = _split(period)
    zone = _zone(timezone)
    start = _month_start(year, month, zone)
    if (year, month) == (MAX_YEAR, 12):
        return start, _LATEST_INSTANT
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, _month_start(next_year, next_month, zone)


def next_period(period: str) -> str:
    """The month after the period ("2026-12" -> "2027-01")."""
    year, month = _split(period)
    if (year, month) == (MAX_YEAR, 12):
        raise PeriodError("invalid_period", "there is no period after 9999-12")
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


def booking_period(period: str, open_from: str | None) -> str:
    """Where something of the period is booked: in the period itself while it is open, else
    in the oldest open period `open_from` (None: no period is closed, every one is open).
    Periods close in order, so every month before `open_from` is closed."""
    if open_from is None or period >= open_from:
        return period
    return open_from


def has_ended(period: str, timezone: str, now: datetime) -> bool:
    """Whether the period's last instant, in the program's timezone, has passed at `now`."""
    _, end = period_bounds(period, timezone)
    return now >= end
