"""The inbox as the API and the web pages use it: items, handling, callbacks, voicemail audio, reports."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from callkeeper.config.model import Config
from callkeeper.followups import rules
from callkeeper.inbox.model import (
    MAX_INBOX_LIMIT,
    DailyReportRow,
    InboxAlreadyHandled,
    InboxError,
    InboxFilter,
    InboxItem,
    InboxState,
    VoicemailAudio,
)
from callkeeper.inbox.report import daily_rows
from callkeeper.inbox.voicemail import find_message
from callkeeper.records import CallRecord, now_utc
from callkeeper.store.base import Store

MAX_NOTE_LENGTH = 2000
MAX_HISTORY = 200


class UnknownItem(InboxError):
    status = 404


class UnknownUser(InboxError):
    status = 404


class UnknownLine(InboxError):
    status = 404


class InvalidRequest(InboxError):
    status = 422


class Dialer(Protocol):
    def dial(self, contact: str, line: str, user: str | None, ring_group: str | None) -> str:
        """Start a progressive-dialer call (`user` first, then `contact`, from `line`); returns its id.
        Raises `api.server.DialerRejected` when it cannot."""


class InboxService:
    """`config` is called for the current config (it changes on reload)."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        dialer: Dialer,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.store = store
        self.config = config
        self.dialer = dialer
        self.clock = clock

    async def list(self, where: InboxFilter) -> list[InboxItem]:
        if not 1 <= where.limit <= MAX_INBOX_LIMIT:
            raise InvalidRequest(f"limit must be from 1 to {MAX_INBOX_LIMIT}")
        return await self.store.inbox_items(where)

    async def item(self, call_id: str) -> InboxItem | None:
        """The item one of whose calls (missed calls, callbacks) is `call_id`."""
        return await self.store.inbox_item(call_id)

    def _user(self, name: str) -> str:
        if name not in self.config().users:
            raise UnknownUser(f"no user {name!r}")
        return name

    async def mark_handled(self, call_id: str, by: str, note: str | None) -> InboxItem:
        """Raises `UnknownItem`, `UnknownUser`, `InvalidRequest` (note too long), `InboxAlreadyHandled`."""
        self._user(by)
        if note is not None and len(note) > MAX_NOTE_LENGTH:
            raise InvalidRequest(f"the note is longer than {MAX_NOTE_LENGTH} characters")
        item = await self.store.mark_inbox_handled(call_id, by, note or None, self.clock())
        if item is None:
            raise UnknownItem(f"no inbox item has call {call_id!r}")
        return item

    async def call_back(self, call_id: str, user: str) -> str:
        """Ring `user`, then the item's caller from the item's line; returns the outbound call's id. Its
        verdict resolves the item (answered) or counts an attempt. Raises `UnknownItem`, `UnknownUser`,
        `InboxAlreadyHandled`, or the dialer's `DialerRejected` (busy user, number not dialable)."""
        self._user(user)
        item = await self.store.inbox_item(call_id)
        if item is None:
            raise UnknownItem(f"no inbox item has call {call_id!r}")
        if item.state is not InboxState.OPEN:
            raise InboxAlreadyHandled(item)
        callback_id = self.dialer.dial(self._dialable_form(item), item.line, user, None)
        # The outbound call ends seconds later at the earliest (the user's phone rings first), well after
        # this link is stored; its final record finds it.
        await self.store.link_callback(item.call_id, callback_id, user)
        return callback_id

    def _dialable_form(self, item: InboxItem) -> str:
        """The caller's number in E.164, as the dialer takes it: trunks often give national numbers."""
        line = self.config().lines.get(item.line)
        parsed = rules.parse_number(item.caller, rules.line_region(line)) if line is not None else None
        return rules.e164(parsed) if parsed is not None else item.caller

    async def voicemail_audio(self, call_id: str) -> VoicemailAudio:
        """The message `call_id` left. Raises `NoVoicemail` (none was left, or no such call),
        `VoicemailGone` (deleted meanwhile), `VoicemailNotPlayable` (not recorded as WAV) or
        `VoicemailSpoolMissing` (asterisk.voicemail_spool is not there)."""
        record = await self.store.get_call(call_id)
        spool = self.config().asterisk.voicemail_spool
        return await asyncio.to_thread(find_message, spool, record)

    async def daily_report(
        self, lines: frozenset[str] | None, since: date, until: date
    ) -> builtins.list[DailyReportRow]:
        """A row per line (of `lines`, None: every line) and day from `since` to `until` (inclusive) that
        had calls, days in each line's time zone. Raises `UnknownLine`."""
        config = self.config()
        unknown = sorted((lines or frozenset()) - set(config.lines))
        if unknown:
            raise UnknownLine(f"no line {unknown[0]!r}")
        if until < since:
            return []
        zones = {name: line.timezone for name, line in config.lines.items() if lines is None or name in lines}
        # Local days reach at most 14 hours either side of UTC's.
        calls = await self.store.report_calls(
            datetime.combine(max(since, date.min + timedelta(days=1)) - timedelta(days=1), time(), UTC),
            datetime.combine(min(until, date.max - timedelta(days=2)) + timedelta(days=2), time(), UTC),
            frozenset(zones),
        )
        return daily_rows(calls, zones, since, until)

    async def history(self, caller: str, limit: int = 20) -> builtins.list[CallRecord]:
        """Calls of that number (from it, or to it), newest first."""
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidRequest(f"limit must be from 1 to {MAX_HISTORY}")
        return await self.store.calls_of_number(caller, limit)

    async def version(self) -> int:
        """Grows whenever an item appears or changes, on any host sharing the store."""
        return await self.store.inbox_version()
