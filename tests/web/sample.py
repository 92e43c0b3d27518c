"""A realistic inbox without Asterisk or a store: the config, the items and a fake InboxService.

The page tests, the screenshot in the README (`make screenshot`) and the 10,000-item benchmark use it.
"""

from __future__ import annotations

import builtins
import math
import struct
import wave
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from callkeeper.config.model import (
    AsteriskConfig,
    Config,
    Destination,
    DestinationKind,
    HttpConfig,
    Line,
    Secret,
    User,
)
from callkeeper.inbox.model import (
    DailyReportRow,
    InboxAlreadyHandled,
    InboxFilter,
    InboxFollowup,
    InboxItem,
    InboxState,
    InboxVoicemail,
    NoVoicemail,
    VoicemailAudio,
    VoicemailGone,
)
from callkeeper.inbox.words import reason_in_words
from callkeeper.records import CallRecord, Direction, Followup, Outcome, Reason, Step, now_utc
from callkeeper.web.passwords import hash_password

PASSWORD = "correct horse battery"
ZONE = ZoneInfo("America/New_York")


def sample_config(password_hash: str) -> Config:
    def line(name: str, number: str, group: str) -> Line:
        return Line(
            name=name, numbers=(number,), route=Destination(DestinationKind.RING_GROUP, group), timezone=ZONE
        )

    return Config(
        asterisk=AsteriskConfig(url="http://127.0.0.1:8088", username="callkeeper", password=Secret("x")),
        lines={
            "Sales": line("Sales", "+12125550100", "sales"),
            "Support": line("Support", "+12125550101", "support"),
            "Front desk": line("Front desk", "+12125550102", "desk"),
        },
        http=HttpConfig(session_secret=Secret("sample-session-secret")),
        users={
            "alice": User("alice", "PJSIP/alice", web_password_hash=Secret(password_hash)),
            "bob": User(
                "bob", "PJSIP/bob", web_password_hash=Secret(password_hash), inbox_lines=("Support",)
            ),
            "carol": User("carol", "PJSIP/carol"),
        },
    )


_SAMPLES: tuple[tuple[str, str, Outcome, Reason, float, float, int, int | None, str | None], ...] = (
    # caller, line, outcome, reason, minutes ago, waited s, attempts, voicemail s, text status
    ("+14155550123", "Sales", Outcome.MISSED, Reason.RING_GROUP_NO_ANSWER, 3, 42, 3, 23, "sent"),
    ("+12125550188", "Support", Outcome.ABANDONED, Reason.QUEUE_CALLER_HANGUP, 11, 125, 1, None, "pending"),
    ("+16465550142", "Front desk", Outcome.MISSED, Reason.VOICEMAIL, 38, 19, 1, 72, "sent"),
    ("+19175550107", "Support", Outcome.ABANDONED, Reason.RING_GROUP_CALLER_HANGUP, 95, 31, 2, None, None),
    ("+13055550199", "Sales", Outcome.MISSED, Reason.PROGRESSIVE_NO_ANSWER, 160, 0, 2, None, None),
    ("+493090182044", "Front desk", Outcome.MISSED, Reason.QUEUE_MAX_WAIT, 290, 180, 1, 15, "held"),
    ("+442079460958", "Sales", Outcome.MISSED, Reason.AFTER_HOURS, 14 * 60, 8, 1, 48, "sent"),
    ("+17185550164", "Support", Outcome.MISSED, Reason.NO_AGENTS_AVAILABLE, 26 * 60, 5, 1, None, "failed"),
)


def _item(index: int, now: datetime) -> InboxItem:
    caller, line, outcome, reason, minutes, waited, attempts, voicemail, text = _SAMPLES[index]
    started = now - timedelta(minutes=minutes)
    call_id = f"sample-{index}"
    outbound = reason is Reason.PROGRESSIVE_NO_ANSWER
    return InboxItem(
        call_id=call_id,
        call_ids=(*tuple(f"{call_id}-{n}" for n in range(attempts - 1)), call_id),
        caller=caller,
        line=line,
        direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
        outcome=outcome,
        reason=reason,
        reason_text=reason_in_words(outcome, reason),
        started_at=started,
        waited_seconds=waited,
        attempts=attempts,
        voicemail=InboxVoicemail(call_id, voicemail, "1000@default") if voicemail else None,
        followup_text=InboxFollowup(call_id, caller, text, started + timedelta(minutes=1)) if text else None,
        state=InboxState.OPEN,
        handled_by=None,
        handled_at=None,
        note=None,
        resolved_by=None,
    )


def _record(item: InboxItem) -> CallRecord:
    at = item.started_at
    steps = [Step("arrived", at, "+12125550100"), Step("welcome", at + timedelta(seconds=1))]
    if item.reason is Reason.AFTER_HOURS:
        steps = [Step("arrived", at, "+12125550100"), Step("after_hours", at)]
    else:
        steps += [
            Step("ring_group", at + timedelta(seconds=6), item.line.lower()),
            Step("ring_group_ended", at + timedelta(seconds=26), "no_answer"),
            Step("queue", at + timedelta(seconds=26), item.line.lower()),
        ]
    if item.voicemail:
        steps += [
            Step("missed_call_handling", at + timedelta(seconds=item.waited_seconds)),
            Step("voicemail", at + timedelta(seconds=item.waited_seconds + 1), "1000@default"),
        ]
    else:
        steps.append(Step("caller_hangup", at + timedelta(seconds=item.waited_seconds), "queue"))
    followups = (
        Followup("sms", "sent", item.caller, at + timedelta(minutes=1), sent_at=at + timedelta(minutes=1)),
        Followup(
            "webhook", "sent", "https://crm.example.com/hooks/calls", at, sent_at=at + timedelta(seconds=2)
        ),
    )
    return CallRecord(
        id=item.call_id,
        direction=item.direction,
        line=item.line,
        caller=item.caller,
        dialed="+12125550100",
        started_at=at,
        ended_at=at + timedelta(seconds=item.waited_seconds + 30),
        outcome=item.outcome,
        reason=item.reason,
        steps=tuple(steps),
        followups=followups,
    )


def write_tone(path: Path, seconds: float = 2.0) -> Path:
    """A short WAV (440 Hz) standing in for a voicemail message."""
    rate = 8000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = (int(6000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(rate * seconds)))
        out.writeframes(b"".join(struct.pack("<h", frame) for frame in frames))
    return path


class SampleInbox:
    """InboxService's interface over items in memory; `extra` open items make a big inbox."""

    def __init__(self, audio: Path | None = None, extra: int = 0) -> None:
        now = now_utc()
        self.items = [_item(index, now) for index in range(len(_SAMPLES))]
        for index in range(extra):
            base = self.items[index % len(_SAMPLES)]
            self.items.append(
                replace(
                    base,
                    call_id=f"bulk-{index}",
                    caller=f"+1202555{index:04d}",
                    started_at=base.started_at - timedelta(minutes=30 + index),
                )
            )
        self.items.sort(key=lambda item: item.started_at, reverse=True)
        self.records = {item.call_id: _record(item) for item in self.items[: len(_SAMPLES) + 1]}
        self.audio = audio
        self.gone: set[str] = set()
        self.callbacks: list[tuple[str, str]] = []
        self.counter = 1
        self.added = Counter[str]()  # missed calls added per line, on today's report

    async def list(self, inbox_filter: InboxFilter) -> Sequence[InboxItem]:
        found = [
            item
            for item in self.items
            if item.state is inbox_filter.state
            and (inbox_filter.lines is None or item.line in inbox_filter.lines)
            and (inbox_filter.outcome is None or item.outcome is inbox_filter.outcome)
            and (inbox_filter.reason is None or item.reason is inbox_filter.reason)
            and (inbox_filter.number is None or inbox_filter.number in item.caller)
        ]
        return found[: inbox_filter.limit]

    async def item(self, call_id: str) -> InboxItem | None:
        return next((item for item in self.items if call_id in item.call_ids), None)

    async def mark_handled(self, call_id: str, by: str, note: str | None) -> InboxItem:
        item = await self.item(call_id)
        assert item is not None
        if item.state is InboxState.HANDLED:
            raise InboxAlreadyHandled(item)
        handled = replace(item, state=InboxState.HANDLED, handled_by=by, handled_at=now_utc(), note=note)
        self.items[self.items.index(item)] = handled
        self.counter += 1
        return handled

    async def call_back(self, call_id: str, user: str) -> str:
        self.callbacks.append((call_id, user))
        return f"callback-{len(self.callbacks)}"

    async def voicemail_audio(self, call_id: str) -> VoicemailAudio:
        if call_id in self.gone:
            raise VoicemailGone(call_id)
        if self.audio is None:
            raise NoVoicemail(call_id)
        return VoicemailAudio(self.audio, "audio/wav", 2)

    async def daily_report(
        self, lines: frozenset[str] | None, since: date, until: date
    ) -> Sequence[DailyReportRow]:
        rows = []
        for offset in range((until - since).days + 1):
            day = since + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for index, line in enumerate(sorted(lines or ())):
                calls = 20 + (offset * 7 + index * 5) % 17
                missed, abandoned, short = 2 + offset % 4, 1 + (offset + index) % 3, offset % 2
                ignored = index % 2
                answered = calls - missed - abandoned - short - ignored
                rows.append(
                    DailyReportRow(
                        line,
                        day,
                        calls,
                        answered,
                        missed,
                        abandoned,
                        short,
                        ignored,
                        0.6 + (offset % 4) / 10,
                        480 + offset * 37,
                        2400 + offset * 120,
                        missed // 2,
                    )
                )
        today = now_utc().date()
        for line, count in self.added.items():
            if since <= today <= until and line in (lines or ()):
                rows.append(DailyReportRow(line, today, count, 0, count, 0, 0, 0, None, None, None, 0))
        return rows

    async def history(self, caller: str, limit: int) -> Sequence[CallRecord]:
        return [record for record in self.records.values() if record.caller == caller][:limit]

    async def version(self) -> int:
        return self.counter

    async def get_call(self, call_id: str) -> CallRecord | None:
        return self.records.get(call_id)

    async def list_calls(
        self,
        *,
        limit: int,
        since: datetime | None,
        line: str | None,
        outcome: str | None,
        until: datetime | None = None,
    ) -> builtins.list[CallRecord]:
        return sorted(self.records.values(), key=lambda record: record.started_at, reverse=True)[:limit]

    def add_missed_call(self, caller: str, line: str = "Sales") -> InboxItem:
        item = replace(
            self.items[0],
            call_id=f"new-{self.counter}",
            call_ids=(f"new-{self.counter}",),
            caller=caller,
            line=line,
            started_at=now_utc(),
            attempts=1,
        )
        self.items.insert(0, item)
        self.records[item.call_id] = _record(item)
        self.added[line] += 1
        self.counter += 1
        return item


def sample_password_hash() -> str:
    return hash_password(PASSWORD)
