"""Business hours: is a line open at a moment, and when does it open next. Pure: no clock, no I/O.

Ranges are wall-clock times in the line's time zone, so they follow daylight saving time: a line open
09:00-17:00 opens at 09:00 local on both sides of a transition. A range that starts in the hour a
spring-forward skips opens when the clocks jump; in the hour a fall-back repeats, the wall clock
decides in both passes, and `next_open` is the first time it reaches the start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from callkeeper.config.model import Line

Override = Literal["open", "closed", "auto"]
OVERRIDES: tuple[Override, ...] = ("open", "closed", "auto")

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def parse_override(mode: str) -> Override:
    for known in OVERRIDES:
        if mode == known:
            return known
    raise ValueError(f"no line override mode {mode!r}: one of {', '.join(OVERRIDES)}")


def is_open(line: Line, moment: datetime, override: Override = "auto") -> bool:
    """`override` is the operator's switch: `open` or `closed` win over the business hours."""
    if override != "auto":
        return override == "open"
    hours = line.business_hours
    if hours is None:
        return True
    local = _local(line, moment)
    if local.date() in hours.holidays:
        return False
    wall = local.time()
    return any(time_range.contains(wall) for time_range in hours.weekly.get(local.weekday(), ()))


def next_open(line: Line, moment: datetime) -> datetime | None:
    """The first instant at or after `moment` when the line is open by its business hours (`moment`
    itself if it is open now), in UTC (`format_opening` shows it in the line's zone; a local time in
    a repeated hour would compare unequal to every other zone's); None if it never opens."""
    if is_open(line, moment):
        return moment.astimezone(UTC)
    hours = line.business_hours
    assert hours is not None  # a line without business hours is always open
    today = _local(line, moment).date()
    # Each holiday hides at most one opening day, so this many weeks always reach an open day.
    for offset in range(7 * (len(hours.holidays) + 1) + 1):
        day = today + timedelta(days=offset)
        if day in hours.holidays:
            continue
        for time_range in hours.weekly.get(day.weekday(), ()):
            opening = _first_instant_at(line, day, time_range.start)
            if opening > moment:
                return opening
    return None


def format_opening(line: Line, opening: datetime) -> str:
    """`opening` as the caller reads it in a text, in the line's time zone: `Monday 09:00`."""
    local = _local(line, opening)
    return f"{DAY_NAMES[local.weekday()]} {local:%H:%M}"


def _local(line: Line, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"business hours need an aware datetime, got {moment!r}")
    return moment.astimezone(line.timezone)


def _first_instant_at(line: Line, day: date, wall: time) -> datetime:
    """The first instant (in UTC) whose wall-clock time on `day` is at least `wall`."""
    earlier = datetime.combine(day, wall, line.timezone)  # fold=0: the first of a repeated time
    if earlier.astimezone(UTC).astimezone(line.timezone).replace(tzinfo=None) == earlier.replace(tzinfo=None):
        return earlier.astimezone(UTC)
    # `wall` falls in a gap the clocks skip: the line opens at the jump. fold=1 reads the gap with
    # the offset after the jump, which lands before it; fold=0 lands after it.
    low = earlier.replace(fold=1).astimezone(UTC)
    high = earlier.astimezone(UTC)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        local = middle.astimezone(line.timezone)
        if local.date() > day or (local.date() == day and local.time() >= wall):
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)
