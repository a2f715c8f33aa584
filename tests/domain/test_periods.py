from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.periods import (
    PeriodError,
    is_valid_timezone,
    parse_period,
    period_bounds,
    period_of,
)

ONE_MICROSECOND = timedelta(microseconds=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # 03:00Z on 1 November is 23:00 on 31 October in New York (EDT, UTC-4).
        ("2026-11-01T03:00:00", "America/New_York", "2026-10"),
        ("2026-11-01T04:00:00", "America/New_York", "2026-11"),
        ("2026-11-01T03:00:00", "UTC", "2026-11"),
        # 15:00Z on 31 December is 00:00 on 1 January in Auckland (NZDT, UTC+13).
        ("2026-12-31T11:00:00", "Pacific/Auckland", "2027-01"),
        ("2026-12-31T10:59:59", "Pacific/Auckland", "2026-12"),
    ],
)
def test_period_is_the_month_in_the_program_timezone(
    instant: str, zone: str, expected: str
) -> None:
    assert period_of(utc(instant), zone) == expected


def test_period_of_accepts_any_aware_instant() -> None:
    tokyo_midnight = datetime(2026, 3, 1, 0, 0, tzinfo=timezone(timedelta(hours=9)))
    assert period_of(tokyo_midnight, "Asia/Tokyo") == "2026-03"
    assert period_of(tokyo_midnight, "UTC") == "2026-02"


def test_period_of_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_of(datetime(2026, 1, 1), "UTC")


def test_period_of_refuses_unknown_timezones() -> None:
    with pytest.raises(PeriodError) as caught:
        period_of(utc("2026-01-01T00:00:00"), "Mars/Olympus_Mons")
    assert caught.value.code == "invalid_timezone"


@pytest.mark.parametrize(
    ("period", "zone", "start", "end"),
    [
        ("2026-11", "UTC", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
        # EDT (UTC-4) until 1 November 2026, EST (UTC-5) after.
        ("2026-10", "America/New_York", "2026-10-01T04:00:00", "2026-11-01T04:00:00"),
        ("2026-11", "America/New_York", "2026-11-01T04:00:00", "2026-12-01T05:00:00"),
        # CET (UTC+1) in March until the last Sunday, CEST (UTC+2) from 1 April.
        ("2026-03", "Europe/Paris", "2026-02-28T23:00:00", "2026-03-31T22:00:00"),
        ("2026-12", "Pacific/Auckland", "2026-11-30T11:00:00", "2026-12-31T11:00:00"),
        ("2024-02", "Asia/Kolkata", "2024-01-31T18:30:00", "2024-02-29T18:30:00"),
    ],
)
def test_period_bounds_are_local_month_starts_in_utc(
    period: str, zone: str, start: str, end: str
) -> None:
    assert period_bounds(period, zone) == (utc(start), utc(end))


def test_month_starting_inside_a_repeated_midnight_starts_at_its_first_occurrence() -> None:
    # Cuba leaves daylight time at 01:00 on Sunday 1 November 2026: the hour from
    # 00:00 to 01:00 happens twice (UTC-4, then UTC-5), both times in November.
    start, _ = period_bounds("2026-11", "America/Havana")
    assert start == utc("2026-11-01T04:00:00")
    assert period_of(start - ONE_MICROSECOND, "America/Havana") == "2026-10"


def test_month_starting_in_a_skipped_midnight_starts_when_clocks_jump() -> None:
    # Argentina began daylight time at 00:00 on 1 December 1988: clocks went from
    # 23:59:59 (UTC-3) straight to 01:00 (UTC-2), so December began at 03:00Z.
    start, _ = period_bounds("1988-12", "America/Argentina/Buenos_Aires")
    assert start == utc("1988-12-01T03:00:00")
    assert period_of(start - ONE_MICROSECOND, "America/Argentina/Buenos_Aires") == "1988-11"


def test_month_starting_inside_a_repeated_midnight_in_the_past() -> None:
    # Italy left daylight time at 01:00 CEST on 1 October 1978, back to 00:00 CET: the
    # month began at the first 00:00, 22:00Z on 30 September.
    start, _ = period_bounds("1978-10", "Europe/Rome")
    assert start == utc("1978-09-30T22:00:00")
    assert period_of(start - ONE_MICROSECOND, "Europe/Rome") == "1978-09"


def test_the_last_period_ends_at_the_end_of_time() -> None:
    start, end = period_bounds("9999-12", "UTC")
    assert start == utc("9999-12-01T00:00:00")
    assert end == datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize("text", ["1970-01", "2026-11", "9999-12"])
def test_parse_period_accepts_year_and_month(text: str) -> None:
    assert parse_period(text) == text


@pytest.mark.parametrize(
    "text",
    ["2026-13", "2026-00", "2026-1", "26-11", "1969-12", "2026/11", "2026-11-01", " 2026-11", ""],
)
def test_parse_period_rejects_anything_else(text: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text)
    assert caught.value.code == "invalid_period"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("UTC", True),
        ("America/New_York", True),
        ("Europe/Paris", True),
        ("america/new_york", False),
        ("Mars/Olympus_Mons", False),
        ("", False),
        ("../etc/passwd", False),
        ("/usr/share/zoneinfo/UTC", False),
    ],
)
def test_timezones_are_iana_keys(name: str, valid: bool) -> None:
    assert is_valid_timezone(name) is valid


ZONES = st.sampled_from(
    [
        "UTC",
        "America/New_York",
        "America/Havana",
        "America/Santiago",
        "America/Sao_Paulo",
        "Europe/Rome",
        "Europe/London",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "America/Argentina/Buenos_Aires",
    ]
)


@given(zone=ZONES, year=st.integers(min_value=1970, max_value=2100), month=st.integers(1, 12))
def test_bounds_contain_exactly_the_instants_of_the_period(
    zone: str, year: int, month: int
) -> None:
    period = f"{year:04d}-{month:02d}"
    start, end = period_bounds(period, zone)
    assert start < end
    assert start.tzinfo is UTC
    assert end.tzinfo is UTC
    assert period_of(start, zone) == period
    assert period_of(end - ONE_MICROSECOND, zone) == period
    assert period_of(end, zone) != period
    if period != "1970-01":
        assert period_of(start - ONE_MICROSECOND, zone) != period


@given(
    zone=ZONES,
    instant=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC),
    ),
)
def test_every_instant_lies_within_the_bounds_of_its_period(zone: str, instant: datetime) -> None:
    start, end = period_bounds(period_of(instant, zone), zone)
    assert start <= instant < end
