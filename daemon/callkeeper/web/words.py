"""What the pages say: times, durations, numbers and a call's journey in a receptionist's words."""

from __future__ import annotations

import functools
from datetime import datetime, tzinfo

import phonenumbers

from callkeeper.records import Step

_WHY = {
    "no_answer": "nobody answered",
    "no_agents": "nobody was available",
    "max_wait": "the longest wait was reached",
}

_STAGES = {
    "arrived": "Called {detail}",
    "adopted": "callkeeper restarted and took the call over ({detail})",
    "after_hours": "Called outside business hours",
    "welcome": "Heard the welcome message",
    "ivr": "Heard the menu {detail}",
    "dtmf": "Pressed {detail}",
    "ring_group": "Phones of {detail} rang",
    "queue": "Waited in the queue of {detail}",
    "personal_line": "The personal line of {detail} rang",
    "external": "Forwarded to {detail}",
    "line": "Passed on to the line {detail}",
    "missed_call_handling": "Missed-call handling started",
    "press_1": "Asked to press 1 to leave a message",
    "voicemail": "Sent to voicemail",
    "dead_end": "Reached a dead end",
    "talking": "Talking with {detail}",
    "answered": "Answered by {detail}",
    "dialer_user": "Rang {detail} to call back",
    "dialer_contact": "Called the caller back",
    "ended": "Call ended",
}

_HANGUP_WHERE = {
    "welcome": "during the welcome message",
    "ivr": "in the menu",
    "ring_group": "while the phones rang",
    "queue": "while waiting in the queue",
    "personal_line": "while the phone rang",
    "external": "while the forward rang",
    "voicemail": "in voicemail",
    "press_1": "instead of pressing 1",
    "talking": "after talking",
}


def step_in_words(step: Step) -> str:
    if step.stage == "caller_hangup":
        where, _, fishing = step.detail.partition(",")
        text = f"Caller hung up {_HANGUP_WHERE.get(where, '')}".rstrip()
        return f"{text} (fishing mode)" if fishing else text
    if step.stage.endswith("_ended"):
        return _WHY.get(step.detail, step.detail or "ended").capitalize()
    if step.stage == "arrived" and step.detail.startswith("+"):
        return f"Called {phone(step.detail)}"
    template = _STAGES.get(step.stage)
    if template is None:
        return f"{step.stage.replace('_', ' ').capitalize()} {step.detail}".rstrip()
    if "{detail}" in template and not step.detail:
        return template.replace(" {detail}", "").replace(" ({detail})", "")
    return template.format(detail=step.detail)


@functools.lru_cache(maxsize=4096)
def phone(number: str) -> str:
    """`+14155550123` as `+1 415-555-0123`; anything else (extensions, withheld) as it is."""
    if not number.startswith("+"):
        return number or "Withheld number"
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def ago(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 6 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return ""


def clock(moment: datetime, zone: tzinfo, now: datetime) -> str:
    """`14:05` today, `Yesterday 14:05`, `Mon 3 Dec 14:05` before, in the line's time zone."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    days = (today - local.date()).days
    if days == 0:
        return local.strftime("%H:%M")
    if days == 1:
        return local.strftime("Yesterday %H:%M")
    return f"{local:%a} {local.day} {local:%b %H:%M}"
