"""Business hours: open or closed at a moment, the next opening, across DST and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callkeeper.calls.hours import format_opening, is_open, next_open
from callkeeper.config.model import BusinessHours, Destination, DestinationKind, Line, TimeRange

NEW_YORK = ZoneInfo("America/New_York")
OFFICE = (TimeRange(time(9), time(12)), TimeRange(time(13), time(17)))


def make_line(
    weekly: dict[int, tuple[TimeRange, ...]] | None = None,
    holidays: frozenset[date] = frozenset(),
    timezone: ZoneInfo = NEW_YORK,
) -> Line:
    hours = None if weekly is None else BusinessHours(weekly, holidays)
    return Line(
        "main", ("100",), Destination(DestinationKind.VOICEMAIL), timezone=timezone, business_hours=hours
    )


# The main line: Mon-Fri 09:00-12:00 and 13:00-17:00, Sat 10:00-14:00, closed 2026-12-25.
MAIN = make_line(
    {**dict.fromkeys(range(5), OFFICE), 5: (TimeRange(time(10), time(14)),)}, frozenset({date(2026, 12, 25)})
)


def ny(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    second: int = 0,
    micro: int = 0,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=NEW_YORK, fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_without_business_hours_always_open() -> None:
    line = make_line()
    assert is_open(line, utc(2026, 12, 25, 3))
    assert next_open(line, utc(2026, 12, 25, 3)) == utc(2026, 12, 25, 3)


def test_override_wins() -> None:
    saturday_night = ny(2026, 6, 6, 23)
    assert not is_open(MAIN, saturday_night)
    assert is_open(MAIN, saturday_night, "open")
    assert not is_open(MAIN, ny(2026, 6, 8, 10), "closed")
    assert not is_open(make_line(), saturday_night, "closed")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (ny(2026, 6, 8, 8, 59, second=59), False),  # Monday, before opening
        (ny(2026, 6, 8, 9), True),  # start is inclusive
        (ny(2026, 6, 8, 11, 59), True),
        (ny(2026, 6, 8, 12), False),  # end is exclusive: lunch
        (ny(2026, 6, 8, 13), True),
        (ny(2026, 6, 8, 17), False),
        (ny(2026, 6, 13, 10, 30), True),  # Saturday
        (ny(2026, 6, 13, 14), False),
        (ny(2026, 6, 14, 11), False),  # Sunday: no ranges
        (utc(2026, 6, 8, 14), True),  # 10:00 EDT, whatever zone the moment is in
        (utc(2026, 6, 8, 22), False),  # 18:00 EDT
    ],
)
def test_is_open_in_the_lines_zone(moment: datetime, expected: bool) -> None:
    assert is_open(MAIN, moment) is expected


def test_holidays_are_closed_by_the_lines_calendar() -> None:
    always = make_line(
        dict.fromkeys(range(7), (TimeRange(time(0), time.max),)), frozenset({date(2026, 12, 25)})
    )
    assert is_open(always, utc(2026, 12, 25, 3))  # still 22:00 on the 24th in New York
    assert not is_open(always, utc(2026, 12, 25, 6))  # 01:00 on the 25th
    assert not is_open(always, ny(2026, 12, 25, 23, 59, second=59))
    assert is_open(always, ny(2026, 12, 26, 0))
    assert not is_open(MAIN, ny(2026, 12, 25, 10))  # a Friday


def test_open_until_midnight() -> None:
    late = make_line({0: (TimeRange(time(18), time.max),)})
    assert is_open(late, ny(2026, 6, 8, 23, 59, second=59, micro=999999))
    assert not is_open(late, ny(2026, 6, 9, 0))


def test_ranges_follow_daylight_saving_time() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
    assert not is_open(MAIN, utc(2026, 3, 6, 13, 30))  # Friday before the change: 08:30 EST
    assert is_open(MAIN, utc(2026, 3, 9, 13, 30))  # Monday after: 09:30 EDT
    assert is_open(MAIN, utc(2026, 10, 30, 13, 30))  # Friday before fall back: 09:30 EDT
    assert not is_open(MAIN, utc(2026, 11, 2, 13, 30))  # Monday after: 08:30 EST


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(MAIN, datetime(2026, 6, 8, 10))


# -- next_open -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (ny(2026, 6, 8, 10), ny(2026, 6, 8, 10)),  # open now
        (ny(2026, 6, 8, 12, 30), ny(2026, 6, 8, 13)),  # after lunch
        (ny(2026, 6, 8, 6), ny(2026, 6, 8, 9)),  # early morning
        (ny(2026, 6, 12, 17, 30), ny(2026, 6, 13, 10)),  # Friday evening: Saturday
        (ny(2026, 6, 13, 15), ny(2026, 6, 15, 9)),  # Saturday afternoon: Monday
        (ny(2026, 12, 24, 18), ny(2026, 12, 26, 10)),  # Christmas is skipped
    ],
)
def test_next_open(moment: datetime, opening: datetime) -> None:
    found = next_open(MAIN, moment)
    assert found == opening
    assert found is not None and found.tzinfo is UTC


def test_next_open_across_daylight_saving_time() -> None:
    # Saturday 7 March 2026 at 15:00 EST: Monday 09:00 is already EDT.
    opening = next_open(MAIN, ny(2026, 3, 7, 15))
    assert opening == utc(2026, 3, 9, 13)
    assert format_opening(MAIN, opening) == "Monday 09:00"


def test_opening_in_the_skipped_hour_is_when_clocks_jump() -> None:
    # On 8 March 2026 New York clocks go from 02:00 straight to 03:00 (07:00 UTC).
    night = make_line({6: (TimeRange(time(2, 30), time(5)),)})
    opening = next_open(night, ny(2026, 3, 7, 12))
    assert opening == utc(2026, 3, 8, 7)
    assert is_open(night, opening)
    assert not is_open(night, opening.astimezone(UTC) - timedelta(seconds=1))


def test_opening_in_the_repeated_hour_is_its_first_occurrence() -> None:
    # On 1 November 2026 01:00-02:00 happens twice; 01:30 first comes at 05:30 UTC.
    night = make_line({6: (TimeRange(time(1, 30), time(4)),)})
    assert next_open(night, ny(2026, 10, 31, 12)) == utc(2026, 11, 1, 5, 30)
    # The wall clock decides, in both passes of the hour.
    assert is_open(night, ny(2026, 11, 1, 1, 45, fold=1))
    assert not is_open(night, ny(2026, 11, 1, 1, 15, fold=1))


def test_never_open() -> None:
    assert next_open(make_line({}), ny(2026, 6, 8)) is None
    only_on_a_holiday = make_line({4: (TimeRange(time(9), time(10)),)}, frozenset({date(2026, 12, 25)}))
    assert next_open(only_on_a_holiday, ny(2026, 12, 24)) == ny(2027, 1, 1, 9)


def test_many_holidays_on_the_only_open_day() -> None:
    mondays = frozenset(date(2026, 6, 8) + timedelta(weeks=week) for week in range(10))
    line = make_line({0: (TimeRange(time(9), time(10)),)}, mondays)
    assert next_open(line, ny(2026, 6, 7)) == ny(2026, 8, 17, 9)


def test_format_opening_in_the_lines_zone() -> None:
    assert format_opening(MAIN, utc(2026, 6, 15, 13)) == "Monday 09:00"
    assert format_opening(make_line(timezone=ZoneInfo("Asia/Tokyo")), utc(2026, 6, 15, 13)) == "Monday 22:00"


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)))
def test_next_open_is_the_first_open_instant(moment: datetime) -> None:
    opening = next_open(MAIN, moment)
    assert opening is not None
    assert opening >= moment
    assert is_open(MAIN, opening)
    if opening > moment:
        assert not is_open(MAIN, opening.astimezone(UTC) - timedelta(microseconds=1))
        assert not is_open(MAIN, moment + (opening - moment) / 2)
