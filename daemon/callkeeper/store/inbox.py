"""The missed-call inbox in SQL common to SQLite and PostgreSQL.

A call's final record changes the inbox in the transaction that stores it (`apply_final`), so the
inbox is right after any crash and on every host sharing the database. Each change bumps the one
row of `inbox_version`, which also orders concurrent writers (PostgreSQL locks that row until commit).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from callkeeper.inbox.model import (
    InboxAlreadyHandled,
    InboxFilter,
    InboxFollowup,
    InboxItem,
    InboxState,
    InboxVoicemail,
    ReportCall,
)
from callkeeper.inbox.words import reason_in_words
from callkeeper.records import CallRecord, Direction, Outcome, Reason

Row = dict[str, Any]
Run = Callable[..., Awaitable[list[Row]]]
_T = TypeVar("_T")

_BUMP = "UPDATE inbox_version SET version = version + 1 RETURNING version"
_ITEM_COLUMNS = (
    "id, caller, line, direction, state, call_id, call_ids, outcome, reason, short, started_at, "
    "waited_seconds, attempts, shown_calls, short_abandons, ignored_calls, voicemail_call_id, "
    "voicemail_seconds, voicemail_mailbox, text_call_id, handled_by, handled_at, note, resolved_by"
)
_NEW_ITEM = (
    "INSERT INTO inbox_items (id, caller, line, direction, state, call_id, call_ids, outcome, reason, short, "
    "started_at, waited_seconds, attempts, shown_calls, short_abandons, ignored_calls, voicemail_call_id, "
    "voicemail_seconds, voicemail_mailbox, text_call_id, version) "
    "VALUES ($1, $2, $3, $4, 'open', $1, $1, $5, $6, $7, $8, $9, 1, $10, $11, $12, $13, $14, $15, $16, $17) "
    "ON CONFLICT (caller, line) WHERE state = 'open' DO UPDATE SET "
    # The latest call describes the item; calls may end in another order than they started.
    + ", ".join(
        f"{column} = CASE WHEN excluded.started_at >= inbox_items.started_at "
        f"THEN excluded.{column} ELSE inbox_items.{column} END"
        for column in ("call_id", "outcome", "reason", "short", "waited_seconds", "started_at")
    )
    + ", call_ids = inbox_items.call_ids || ' ' || excluded.call_ids, attempts = inbox_items.attempts + 1, "
    "shown_calls = inbox_items.shown_calls + excluded.shown_calls, "
    "short_abandons = inbox_items.short_abandons + excluded.short_abandons, "
    "ignored_calls = inbox_items.ignored_calls + excluded.ignored_calls, "
    + ", ".join(
        f"{column} = COALESCE(excluded.{column}, inbox_items.{column})"
        for column in ("voicemail_call_id", "voicemail_seconds", "voicemail_mailbox", "text_call_id")
    )
    + ", version = excluded.version RETURNING id"
)
# The call's follow-up text, if one was planned: that happens before its final record is stored.
_HAS_TEXT = "SELECT id FROM outbox WHERE call_id = $1 AND kind = 'sms'"
_RESOLVE = (
    "UPDATE inbox_items SET state = 'handled', handled_by = $1, handled_at = $2, resolved_by = $3, "
    "called_back_at = $4, version = $5 WHERE state = 'open' AND "
)


def _waited_seconds(record: CallRecord) -> float:
    assert record.ended_at is not None
    waited = (record.ended_at - record.started_at).total_seconds()
    if record.voicemail is not None and record.voicemail.left:
        waited -= record.voicemail.seconds
    return round(max(waited, 0.0), 1)


async def _bump(run: Run) -> int:
    return int((await run(_BUMP))[0]["version"])


async def apply_final(run: Run, record: CallRecord) -> None:
    """What a call's final record does to the inbox; a record applied before changes nothing."""
    if record.line is None or record.outcome is None or record.ended_at is None:
        return
    linked = await run("SELECT item_id, counted, callback_by FROM inbox_calls WHERE call_id = $1", record.id)
    if linked and linked[0]["counted"]:
        return
    if record.customer_answered:
        await _resolve(run, record, linked[0] if linked else None)
    elif linked:
        await _callback_unanswered(run, record, linked[0]["item_id"])
    else:
        await _missed(run, record)


async def _resolve(run: Run, record: CallRecord, linked: Row | None) -> None:
    """An answered call closes the open items of its number on its line (a callback, its own item)."""
    assert record.line is not None and record.ended_at is not None
    open_items = await run(
        "SELECT id FROM inbox_items WHERE state = 'open' AND caller = $1 AND line = $2 AND started_at < $3",
        record.customer,
        record.line,
        record.started_at,
    )
    if not open_items and linked is None:
        return
    version = await _bump(run)
    outbound = record.direction is Direction.OUTBOUND
    called_back_at = record.started_at if outbound else None
    if linked is not None:
        await run("UPDATE inbox_calls SET counted = TRUE WHERE call_id = $1", record.id)
        await run(
            _RESOLVE + "id = $6",
            linked["callback_by"] or record.answered_by,
            record.ended_at,
            record.id,
            called_back_at,
            version,
            linked["item_id"],
        )
    await run(
        _RESOLVE + "caller = $6 AND line = $7 AND started_at < $8",
        record.answered_by,
        record.ended_at,
        record.id,
        called_back_at,
        version,
        record.customer,
        record.line,
        record.started_at,
    )


async def _callback_unanswered(run: Run, record: CallRecord, item_id: str) -> None:
    """A callback that did not reach the caller: one more attempt if their phone rang, the item stays open."""
    assert record.outcome is not None and record.reason is not None
    version = await _bump(run)
    texted = bool(await run(_HAS_TEXT, record.id))
    await run("UPDATE inbox_calls SET counted = TRUE WHERE call_id = $1", record.id)
    await run(
        "UPDATE inbox_items SET call_id = $2, outcome = $3, reason = $4, short = FALSE, "
        "attempts = attempts + $5, text_call_id = COALESCE($6, text_call_id), version = $7 WHERE id = $1",
        item_id,
        record.id,
        record.outcome.value,
        record.reason.value,
        1 if record.reason is Reason.PROGRESSIVE_NO_ANSWER else 0,
        record.id if texted else None,
        version,
    )


async def _missed(run: Run, record: CallRecord) -> None:
    assert record.outcome is not None and record.reason is not None
    version = await _bump(run)
    short = record.short and record.outcome in (Outcome.MISSED, Outcome.ABANDONED)
    ignored = record.outcome is Outcome.IGNORED
    voicemail = record.voicemail if record.voicemail is not None and record.voicemail.left else None
    texted = bool(await run(_HAS_TEXT, record.id))
    rows = await run(
        _NEW_ITEM,
        record.id,
        record.customer,
        record.line,
        record.direction.value,
        record.outcome.value,
        record.reason.value,
        short,
        record.started_at,
        _waited_seconds(record),
        0 if short or ignored else 1,
        1 if short else 0,
        1 if ignored else 0,
        record.id if voicemail else None,
        voicemail.seconds if voicemail else None,
        voicemail.mailbox if voicemail else None,
        record.id if texted else None,
        version,
    )
    await run(
        "INSERT INTO inbox_calls (call_id, item_id, counted, voicemail_seconds) "
        "VALUES ($1, $2, TRUE, $3) ON CONFLICT (call_id) DO NOTHING",
        record.id,
        rows[0]["id"],
        voicemail.seconds if voicemail else None,
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(where: InboxFilter, args: list[Any]) -> list[str]:
    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    conditions = [f"state = {arg(where.state.value)}"]
    if where.lines is not None:
        conditions.append(f"line IN ({', '.join(arg(line) for line in sorted(where.lines))})")
    if where.outcome is not None:
        conditions.append(f"outcome = {arg(where.outcome.value)}")
    if where.reason is not None:
        conditions.append(f"reason = {arg(where.reason.value)}")
    if where.since is not None:
        conditions.append(f"started_at >= {arg(_day_start(where.since))}")
    if where.until is not None:
        conditions.append(f"started_at < {arg(_day_start(where.until + timedelta(days=1)))}")
    if where.number:
        conditions.append(f"caller LIKE {arg(_like_pattern(where.number))} ESCAPE '\\'")
    visible = ["shown_calls"]
    if where.show_short_abandons:
        visible.append("short_abandons")
    if where.show_ignored:
        visible.append("ignored_calls")
    if len(visible) < 3:
        conditions.append(f"{' + '.join(visible)} > 0")
    return conditions


def _item(row: Row) -> InboxItem:
    outcome, reason = Outcome(row["outcome"]), Reason(row["reason"])
    shown = int(row["shown_calls"])
    return InboxItem(
        call_id=row["call_id"],
        call_ids=tuple(row["call_ids"].split(" ")),
        caller=row["caller"],
        line=row["line"],
        direction=Direction(row["direction"]),
        outcome=outcome,
        reason=reason,
        reason_text=reason_in_words(outcome, reason, short=bool(row["short"])),
        started_at=row["started_at"],
        waited_seconds=float(row["waited_seconds"]),
        attempts=int(row["attempts"]),
        voicemail=(
            InboxVoicemail(row["voicemail_call_id"], int(row["voicemail_seconds"]), row["voicemail_mailbox"])
            if row["voicemail_call_id"] is not None
            else None
        ),
        followup_text=(
            InboxFollowup(
                call_id=row["text_call_id"],
                to=row["sms_to"],
                status=row["sms_status"],
                created_at=row["sms_created_at"],
                sent_at=row["sms_sent_at"],
                detail=row["sms_detail"] or "",
                body=str(json.loads(row["sms_payload"]).get("body", "")),
            )
            if row["sms_status"] is not None
            else None
        ),
        state=InboxState(row["state"]),
        handled_by=row["handled_by"],
        handled_at=row["handled_at"],
        note=row["note"],
        resolved_by=row["resolved_by"],
        short=shown == 0 and int(row["short_abandons"]) > 0,
        ignored=shown == 0 and int(row["short_abandons"]) == 0,
    )


def _listing(page: str) -> str:
    """The items of `page` (a SELECT of inbox_items rows) with their newest text."""
    return (
        f"WITH page AS ({page}) "
        "SELECT page.*, o.destination AS sms_to, o.status AS sms_status, o.created_at AS sms_created_at, "
        "o.sent_at AS sms_sent_at, o.last_error AS sms_detail, o.payload AS sms_payload "
        "FROM page LEFT JOIN outbox o ON o.call_id = page.text_call_id AND o.kind = 'sms' "
        "ORDER BY page.started_at DESC, page.id DESC"
    )


class InboxQueries(abc.ABC):
    """The inbox side of `SqlStore`."""

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any, write: bool = False) -> list[Row]: ...

    @abc.abstractmethod
    async def _transaction(self, work: Callable[[Run], Coroutine[Any, Any, _T]]) -> _T:
        """Run `work`'s statements in one write transaction: all of them or none."""

    async def inbox_items(self, where: InboxFilter) -> list[InboxItem]:
        """Newest first (by the latest missed call), at most `where.limit`."""
        if where.limit < 1:
            raise ValueError(f"limit must be at least 1, not {where.limit}")
        if where.lines is not None and not where.lines:
            return []
        args: list[Any] = []
        conditions = _conditions(where, args)
        args.append(where.limit)
        page = (
            f"SELECT {_ITEM_COLUMNS} FROM inbox_items WHERE {' AND '.join(conditions)} "
            f"ORDER BY started_at DESC, id DESC LIMIT ${len(args)}"
        )
        return [_item(row) for row in await self._fetch(_listing(page), *args)]

    async def inbox_item(self, call_id: str) -> InboxItem | None:
        """The item one of whose calls is `call_id`."""
        rows = await self._fetch(
            _listing(
                f"SELECT {_ITEM_COLUMNS} FROM inbox_items WHERE id = "
                "(SELECT item_id FROM inbox_calls WHERE call_id = $1)"
            ),
            call_id,
        )
        return _item(rows[0]) if rows else None

    async def mark_inbox_handled(
        self, call_id: str, by: str, note: str | None, now: datetime
    ) -> InboxItem | None:
        """Close the item of `call_id` by hand; None if no item has that call. Raises
        `InboxAlreadyHandled` if it was handled before."""

        async def work(run: Run) -> str | None:
            found = await run("SELECT item_id FROM inbox_calls WHERE call_id = $1", call_id)
            if not found:
                return None
            version = await _bump(run)
            # Conditional, so that of two users marking it at once (on any host) one wins, once.
            marked = await run(
                "UPDATE inbox_items SET state = 'handled', handled_by = $2, handled_at = $3, note = $4, "
                "version = $5 WHERE id = $1 AND state = 'open' RETURNING id",
                found[0]["item_id"],
                by,
                now,
                note,
                version,
            )
            return "marked" if marked else "handled before"

        found = await self._transaction(work)
        if found is None:
            return None
        item = await self.inbox_item(call_id)
        assert item is not None
        if found != "marked":
            raise InboxAlreadyHandled(item)
        return item

    async def link_callback(self, call_id: str, callback_id: str, user: str) -> bool:
        """Make the outbound call `callback_id` (placed by `user`) a callback of the item of `call_id`: its
        final record resolves the item if the caller answered, else counts an attempt. False if no item
        has `call_id`."""

        async def work(run: Run) -> bool:
            linked = await run(
                "INSERT INTO inbox_calls (call_id, item_id, counted, callback_by) "
                "SELECT $1, item_id, FALSE, $2 FROM inbox_calls WHERE call_id = $3 "
                "ON CONFLICT (call_id) DO NOTHING RETURNING item_id",
                callback_id,
                user,
                call_id,
            )
            if not linked:
                return False
            version = await _bump(run)
            await run(
                "UPDATE inbox_items SET call_ids = call_ids || ' ' || $2, version = $3 WHERE id = $1",
                linked[0]["item_id"],
                callback_id,
                version,
            )
            return True

        return await self._transaction(work)

    async def inbox_version(self) -> int:
        rows = await self._fetch("SELECT version FROM inbox_version")
        return int(rows[0]["version"])

    async def report_calls(
        self, since: datetime, until: datetime, lines: frozenset[str] | None
    ) -> list[ReportCall]:
        """Inbound calls that started in [since, until) and have ended, of `lines` (None: all)."""
        args: list[Any] = [since, until]
        line_condition = ""
        if lines is not None:
            if not lines:
                return []
            line_condition = f" AND c.line IN ({', '.join(f'${n}' for n in range(3, 3 + len(lines)))})"
            args.extend(sorted(lines))
        rows = await self._fetch(
            "SELECT c.line, c.started_at, c.ended_at, c.outcome, c.short, ic.voicemail_seconds, "
            "i.called_back_at FROM calls c LEFT JOIN inbox_calls ic ON ic.call_id = c.id "
            "LEFT JOIN inbox_items i ON i.id = ic.item_id "
            "WHERE c.direction = 'inbound' AND c.line IS NOT NULL AND c.ended_at IS NOT NULL "
            f"AND c.outcome IS NOT NULL AND c.started_at >= $1 AND c.started_at < $2{line_condition}",
            *args,
        )
        return [
            ReportCall(
                line=row["line"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
                outcome=Outcome(row["outcome"]),
                short=bool(row["short"]),
                voicemail=row["voicemail_seconds"] is not None,
                called_back_at=row["called_back_at"],
            )
            for row in rows
        ]
