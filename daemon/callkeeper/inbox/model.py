"""What the inbox shows: items, the filter that selects them, and the daily report's rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from callkeeper.records import Direction, Outcome, Reason, utc_iso

DEFAULT_INBOX_LIMIT = 500
MAX_INBOX_LIMIT = 10_000


class InboxState(enum.StrEnum):
    OPEN = "open"
    HANDLED = "handled"


@dataclass(frozen=True, slots=True)
class InboxVoicemail:
    """The newest message left on one of the item's calls (`call_id`)."""

    call_id: str
    seconds: int
    mailbox: str

    def to_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "seconds": self.seconds, "mailbox": self.mailbox}


@dataclass(frozen=True, slots=True)
class InboxFollowup:
    """The newest follow-up text sent (or planned) for one of the item's calls: what it says, the outbox's
    status (`pending`, `sending`, `sent`, `failed`, `held`, `cancelled`) and, when not sent, why."""

    call_id: str
    to: str
    status: str
    created_at: datetime
    sent_at: datetime | None = None
    detail: str = ""
    body: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "to": self.to,
            "status": self.status,
            "created_at": utc_iso(self.created_at),
            "sent_at": utc_iso(self.sent_at),
            "detail": self.detail,
            "body": self.body,
        }


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One caller (`caller`: the number outside the PBX) on one line, with every call not yet worked.

    `call_id`, `outcome` and `reason` are the latest call's (a callback that did not reach them is one);
    `started_at` and `waited_seconds` the latest missed call's. `attempts` counts the caller's calls and
    the callbacks that rang them in vain. `resolved_by` names the answered call that closed the item by
    itself (a callback, or a later call with the caller); `handled_by` is the user who marked it handled
    or who talked to the caller on that call.
    """

    call_id: str
    call_ids: tuple[str, ...]
    caller: str
    line: str
    direction: Direction
    outcome: Outcome
    reason: Reason
    reason_text: str
    started_at: datetime
    waited_seconds: float
    attempts: int
    voicemail: InboxVoicemail | None
    followup_text: InboxFollowup | None
    state: InboxState
    handled_by: str | None
    handled_at: datetime | None
    note: str | None
    resolved_by: str | None
    short: bool = False
    ignored: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "call_ids": list(self.call_ids),
            "caller": self.caller,
            "line": self.line,
            "direction": self.direction.value,
            "outcome": self.outcome.value,
            "reason": self.reason.value,
            "reason_text": self.reason_text,
            "started_at": utc_iso(self.started_at),
            "waited_seconds": self.waited_seconds,
            "attempts": self.attempts,
            "voicemail": self.voicemail.to_json() if self.voicemail else None,
            "followup_text": self.followup_text.to_json() if self.followup_text else None,
            "state": self.state.value,
            "handled_by": self.handled_by,
            "handled_at": utc_iso(self.handled_at),
            "note": self.note,
            "resolved_by": self.resolved_by,
            "short": self.short,
            "ignored": self.ignored,
        }


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """Which items to list, newest first. `lines` None means every line (a user's `inbox_lines` narrow
    it); `since`/`until` are days (inclusive) of the items' latest call, in UTC; `number` matches any part
    of the caller's number. Items whose calls were all short abandons (or all ignored) are left out unless
    `show_short_abandons` (or `show_ignored`)."""

    state: InboxState = InboxState.OPEN
    lines: frozenset[str] | None = None
    outcome: Outcome | None = None
    reason: Reason | None = None
    since: date | None = None
    until: date | None = None
    number: str | None = None
    show_short_abandons: bool = False
    show_ignored: bool = False
    limit: int = DEFAULT_INBOX_LIMIT


@dataclass(frozen=True, slots=True)
class DailyReportRow:
    """One line's inbound calls on one day (in the line's time zone). `missed` and `abandoned` leave out
    short abandons, counted apart; `called_back_share` is the share of missed and abandoned calls whose
    caller was reached by an answered outbound call (a callback or the dialer) afterwards, None on a day
    without them; the callback times run from the end of the missed call to the start of that call."""

    line: str
    day: date
    calls: int
    answered: int
    missed: int
    abandoned: int
    short_abandons: int
    ignored: int
    called_back_share: float | None
    callback_median_seconds: float | None
    callback_p90_seconds: float | None
    voicemails: int

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "day": self.day.isoformat(),
            "calls": self.calls,
            "answered": self.answered,
            "missed": self.missed,
            "abandoned": self.abandoned,
            "short_abandons": self.short_abandons,
            "ignored": self.ignored,
            "called_back_share": self.called_back_share,
            "callback_median_seconds": self.callback_median_seconds,
            "callback_p90_seconds": self.callback_p90_seconds,
            "voicemails": self.voicemails,
        }


@dataclass(frozen=True, slots=True)
class VoicemailAudio:
    """A voicemail message as a file the daemon's host can read."""

    path: Path
    content_type: str
    seconds: int


class InboxError(Exception):
    """A request the inbox cannot carry out; `status` is the HTTP status that says why."""

    status = 400


class InboxAlreadyHandled(InboxError):
    """The item was handled before (by a colleague, or by a call that reached the caller)."""

    status = 409

    def __init__(self, item: InboxItem) -> None:
        super().__init__(f"already handled by {item.handled_by or 'a call that reached the caller'}")
        self.item = item


class NoVoicemail(InboxError):
    """No such call, or it left no message."""

    status = 404


class VoicemailGone(InboxError):
    """The message was deleted meanwhile (VoiceMailMain, or the mailbox was emptied)."""

    status = 410


class VoicemailNotPlayable(InboxError):
    """The message is there but not as WAV, the one format of Asterisk's that browsers play."""

    status = 415


class VoicemailSpoolMissing(InboxError):
    """`asterisk.voicemail_spool` is not a folder this host can read."""

    status = 503


@dataclass(frozen=True, slots=True)
class ReportCall:
    """One inbound call as the daily report counts it."""

    line: str
    started_at: datetime
    ended_at: datetime
    outcome: Outcome
    short: bool
    voicemail: bool
    called_back_at: datetime | None
