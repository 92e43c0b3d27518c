"""The daily report: each line's inbound calls per day, counted from the store's records."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from callkeeper.inbox.model import DailyReportRow, ReportCall
from callkeeper.records import Outcome


@dataclass(slots=True)
class _Day:
    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    ignored: int = 0
    voicemails: int = 0
    callback_seconds: list[float] = field(default_factory=list)


def p90(values: list[float]) -> float:
    """The 90th percentile by nearest rank: the value 90 % of the values are at or below."""
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _count(day: _Day, call: ReportCall) -> None:
    day.calls += 1
    day.voicemails += call.voicemail
    if call.outcome is Outcome.ANSWERED:
        day.answered += 1
        return
    if call.outcome is Outcome.IGNORED:
        day.ignored += 1
        return
    if call.short:
        day.short_abandons += 1
        return
    if call.outcome is Outcome.MISSED:
        day.missed += 1
    else:
        day.abandoned += 1
    if call.called_back_at is not None and call.called_back_at >= call.ended_at:
        day.callback_seconds.append((call.called_back_at - call.ended_at).total_seconds())


def daily_rows(
    calls: Iterable[ReportCall], zones: Mapping[str, ZoneInfo], since: date, until: date
) -> list[DailyReportRow]:
    """A row for each line of `zones` (in its time zone) and day from `since` to `until` that had calls,
    by line then day."""
    days: dict[tuple[str, date], _Day] = {}
    for call in calls:
        zone = zones.get(call.line)
        if zone is None:
            continue
        day = call.started_at.astimezone(zone).date()
        if since <= day <= until:
            _count(days.setdefault((call.line, day), _Day()), call)
    rows = []
    for (line, day), counted in sorted(days.items()):
        waiting = counted.missed + counted.abandoned
        seconds = counted.callback_seconds
        rows.append(
            DailyReportRow(
                line=line,
                day=day,
                calls=counted.calls,
                answered=counted.answered,
                missed=counted.missed,
                abandoned=counted.abandoned,
                short_abandons=counted.short_abandons,
                ignored=counted.ignored,
                called_back_share=round(len(seconds) / waiting, 4) if waiting else None,
                callback_median_seconds=round(statistics.median(seconds), 1) if seconds else None,
                callback_p90_seconds=round(p90(seconds), 1) if seconds else None,
                voicemails=counted.voicemails,
            )
        )
    return rows
