"""The pages' view of inbox items, call records and report rows: plain dicts of words for the templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from markupsafe import Markup, escape

from callkeeper.inbox.model import DailyReportRow, InboxItem, InboxState
from callkeeper.records import CallRecord, Followup
from callkeeper.web.words import ago, clock, duration, phone, step_in_words

NOTHING = "\N{EN DASH}"
OUTCOME_WORDS = {"missed": "Missed", "abandoned": "Abandoned", "ignored": "Ignored", "answered": "Answered"}
TEXT_WORDS = {
    "sent": ("Text sent", "sent"),
    "pending": ("Text waiting", "waiting"),
    "sending": ("Text sending", "waiting"),
    "held": ("Text held back", "waiting"),
    "failed": ("Text failed", "failed"),
    "cancelled": ("Text cancelled", "none"),
}
FOLLOWUP_STATUS = {
    "sent": "Sent",
    "pending": "Waiting",
    "sending": "Sending",
    "held": "Held back",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def full_time(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M:%S %Z}"


def handled_text(item: InboxItem, zone: tzinfo, now: datetime) -> str:
    when = f" at {clock(item.handled_at, zone, now)}" if item.handled_at else ""
    if item.resolved_by:
        who = f" with {item.handled_by}" if item.handled_by else ""
        return f"Reached by a later call{who}{when}"
    return f"by {item.handled_by or 'someone'}{when}"


def inbox_row(item: InboxItem, zone: tzinfo, now: datetime) -> dict[str, Any]:
    text, text_state = ("", "none")
    if item.followup_text is not None:
        text, text_state = TEXT_WORDS.get(item.followup_text.status, (item.followup_text.status, "none"))
    return {
        "key": f"{item.caller}|{item.line}",
        "call_id": item.call_id,
        "caller": phone(item.caller),
        "line": item.line,
        "attempts": item.attempts,
        "attempts_text": "1 call" if item.attempts == 1 else f"{item.attempts} calls",
        "line_text": f"{item.line} line",
        "outcome": item.outcome.value,
        "outcome_text": OUTCOME_WORDS.get(item.outcome.value, item.outcome.value),
        "reason_text": item.reason_text,
        "started_iso": item.started_at.isoformat(),
        "started_full": full_time(item.started_at, zone),
        "when": clock(item.started_at, zone, now),
        "ago": ago(item.started_at, now),
        "waited": duration(item.waited_seconds) if item.waited_seconds >= 1 else "",
        "voicemail": duration(item.voicemail.seconds) if item.voicemail else "",
        "text": text,
        "text_state": text_state,
        "state": item.state.value,
        "handled_text": handled_text(item, zone, now) if item.state is InboxState.HANDLED else "",
        "note": item.note or "",
    }


def call_row(record: CallRecord, reason_text: str, zone: tzinfo, now: datetime) -> dict[str, Any]:
    """A call that has no inbox item (answered, or from before the inbox), as the call page shows it."""
    outbound = record.direction.value == "outbound"
    number = record.dialed if outbound else record.caller
    outcome = record.outcome.value if record.outcome else "in progress"
    waited = (record.ended_at - record.started_at).total_seconds() if record.ended_at else 0
    return {
        "call_id": record.id,
        "number": number,
        "caller": phone(number),
        "line_text": f"{record.line} line" + (", we called them" if outbound else ""),
        "attempts_text": "not in the inbox",
        "outcome": outcome,
        "outcome_text": OUTCOME_WORDS.get(outcome, "In progress"),
        "reason_text": reason_text,
        "when": clock(record.started_at, zone, now),
        "ago": ago(record.started_at, now),
        "waited": "" if record.answered_by else duration(waited) if waited >= 1 else "",
        "state": "none",
    }


def journey(record: CallRecord, zone: tzinfo) -> list[dict[str, str]]:
    return [
        {
            "iso": step.at.isoformat(),
            "time": step.at.astimezone(zone).strftime("%H:%M:%S"),
            "text": step_in_words(step),
        }
        for step in record.steps
    ]


def followup_view(followup: Followup, zone: tzinfo, now: datetime) -> dict[str, str]:
    when = followup.sent_at or followup.due_at or followup.created_at
    prefix = "" if followup.sent_at else ("due " if followup.due_at else "")
    return {
        "kind": "Text" if followup.kind in ("sms", "text") else followup.kind.replace("_", " ").capitalize(),
        "to": phone(followup.to) if followup.to.startswith("+") else followup.to,
        "status": FOLLOWUP_STATUS.get(followup.status, followup.status),
        "state": followup.status,
        "when": prefix + clock(when, zone, now),
        "detail": followup.detail,
    }


def history_row(
    record: CallRecord, current: str, zone: tzinfo, now: datetime, reason_text: str
) -> dict[str, Any]:
    outcome = record.outcome.value if record.outcome else "in progress"
    return {
        "call_id": record.id,
        "current": record.id == current,
        "when": clock(record.started_at, zone, now),
        "outcome": outcome,
        "outcome_text": OUTCOME_WORDS.get(outcome, "In progress"),
        "line": record.line or "",
        "reason_text": reason_text
        if record.direction.value == "inbound"
        else f"We called them: {reason_text}",
    }


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return NOTHING
    return duration(seconds) if seconds < 60 else duration(round(seconds / 60) * 60)


def report_tiles(rows: Sequence[DailyReportRow]) -> list[dict[str, str]]:
    """The period at a glance: calls, answered share, missed and abandoned, called back share."""
    calls = sum(row.calls for row in rows)
    answered = sum(row.answered for row in rows)
    lost = sum(row.missed + row.abandoned for row in rows)
    reached = sum((row.called_back_share or 0) * (row.missed + row.abandoned) for row in rows)
    return [
        {"figure": str(calls), "label": "calls"},
        {"figure": f"{round(100 * answered / calls)} %" if calls else NOTHING, "label": "answered"},
        {"figure": str(lost), "label": "missed or abandoned"},
        {"figure": f"{round(100 * reached / lost)} %" if lost else NOTHING, "label": "of those called back"},
        {"figure": str(sum(row.voicemails for row in rows)), "label": "voicemails"},
    ]


def report_row(row: DailyReportRow) -> dict[str, Any]:
    share = row.called_back_share
    return {
        "day": f"{row.day:%a} {row.day.day} {row.day:%b}",
        "line": row.line,
        "calls": row.calls,
        "answered": row.answered,
        "missed": row.missed,
        "abandoned": row.abandoned,
        "short": row.short_abandons,
        "ignored": row.ignored,
        "called_back": NOTHING if share is None else f"{round(share * 100)} %",
        "median": minutes(row.callback_median_seconds),
        "p90": minutes(row.callback_p90_seconds),
        "voicemails": row.voicemails,
    }


@dataclass(frozen=True, slots=True)
class DayTotals:
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    ignored: int = 0

    @property
    def total(self) -> int:
        return self.answered + self.missed + self.abandoned + self.ignored


CHART_WIDTH, CHART_HEIGHT = 960, 240
PLOT_LEFT, PLOT_BOTTOM, PLOT_TOP = 36, 24, 10
SERIES = ("answered", "missed", "abandoned", "ignored")


def day_totals(rows: Sequence[DailyReportRow], first: date, last: date) -> dict[date, DayTotals]:
    totals = {first + timedelta(days=offset): DayTotals() for offset in range((last - first).days + 1)}
    for row in rows:
        before = totals.get(row.day, DayTotals())
        totals[row.day] = DayTotals(
            before.answered + row.answered,
            before.missed + row.missed,
            before.abandoned + row.abandoned + row.short_abandons,
            before.ignored + row.ignored,
        )
    return dict(sorted(totals.items()))


def _nice_top(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if value <= step * 4:
            return step * 4
    return value


def report_chart(totals: Mapping[date, DayTotals]) -> Markup:
    """Stacked bars per day, as inline SVG made here: no chart library, no script."""
    days = list(totals)
    top = _nice_top(max((day.total for day in totals.values()), default=0) or 1)
    plot_height = CHART_HEIGHT - PLOT_BOTTOM - PLOT_TOP
    slot = (CHART_WIDTH - PLOT_LEFT) / max(1, len(days))
    bar = max(2.0, min(40.0, slot * 0.65))
    label_every = max(1, round(len(days) / 14))
    span = f"{days[0]} to {days[-1]}" if days else ""
    parts = [
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        f'aria-label="Calls per day, {escape(span)}">'
    ]
    for tick in range(5):
        value = top * tick // 4
        y = PLOT_TOP + plot_height - plot_height * tick / 4
        parts.append(f'<line class="grid" x1="{PLOT_LEFT}" x2="{CHART_WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{PLOT_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    for index, (day, counts) in enumerate(totals.items()):
        x = PLOT_LEFT + slot * index + (slot - bar) / 2
        y = PLOT_TOP + plot_height
        title = f"{day:%a} {day.day} {day:%b}: " + ", ".join(
            f"{getattr(counts, name)} {name}" for name in SERIES
        )
        parts.append(f"<g><title>{escape(title)}</title>")
        for name in SERIES:
            height = plot_height * getattr(counts, name) / top
            if height > 0:
                y -= height
                parts.append(
                    f'<rect class="{name}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                    f'height="{height:.1f}" rx="2"/>'
                )
        parts.append("</g>")
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{CHART_HEIGHT - 6}" '
                f'text-anchor="middle">{day.day} {day:%b}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
