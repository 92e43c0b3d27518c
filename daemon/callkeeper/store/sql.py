"""The store in SQL common to SQLite and PostgreSQL; the backends only run statements.

Statements use PostgreSQL's `$1` placeholders (SQLite reads them as `?1`). Every operation is one
statement, hence atomic on both backends; the claim differs by dialect and comes from the backend.
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import structlog

from callkeeper.records import CallRecord
from callkeeper.store.base import OptOut, OutboxItem, OutboxKind, OutboxStatus
from callkeeper.store.inbox import InboxQueries, Row, Run, apply_final

_T = TypeVar("_T")
log = structlog.get_logger(__name__)

MAX_LIST_LIMIT = 1000

HEALTH_TIMEOUT_SECONDS = 5.0

_CALL_COLUMNS = (
    "id",
    "direction",
    "line",
    "caller",
    "dialed",
    "started_at",
    "ended_at",
    "outcome",
    "reason",
    "short",
    "answered_by",
    "end_observed",
    "host",
    "record",
    "updated_at",
)
_SAVE_CALL = (
    f"INSERT INTO calls ({', '.join(_CALL_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(_CALL_COLUMNS) + 1))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _CALL_COLUMNS[1:])
    + " WHERE calls.ended_at IS NULL OR excluded.ended_at IS NOT NULL"
)

OUTBOX_COLUMNS = (
    "id",
    "idempotency_key",
    "kind",
    "call_id",
    "line",
    "destination",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "claimed_by",
    "claimed_until",
    "provider_id",
    "last_error",
    "created_at",
    "updated_at",
    "sent_at",
)
_OUTBOX_SELECT = f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM outbox"
_ENQUEUE = (
    f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(OUTBOX_COLUMNS) + 1))}) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
# What a claim takes ($3 is now, $4 the limit): first items whose worker died (lease expired), then
# pending items, oldest due first. Each walks its own index and stops at the limit, however long the
# backlog; a claim combines them (SQLite: UNION ALL; PostgreSQL: each locked with SKIP LOCKED).
EXPIRED_LEASES = (
    "SELECT id FROM outbox WHERE status = 'sending' AND claimed_until <= $3 ORDER BY claimed_until LIMIT $4"
)
DUE_PENDING = (
    "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 "
    "ORDER BY next_attempt_at, created_at, id LIMIT $4"
)
CLAIM_SET = (
    "status = 'sending', claimed_by = $1, claimed_until = $2, attempts = attempts + 1, updated_at = $3"
)

# $1 number, $2 line, $3 now, $4 the end of a window that began at that moment.
_RESERVE_WINDOW = (
    "INSERT INTO text_windows (number, line, reserved_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (number, line) DO UPDATE SET reserved_at = excluded.reserved_at "
    "WHERE text_windows.reserved_at <= $4 RETURNING number"
)

_UNDELIVERED = "('pending', 'sending', 'held')"
_COUNTED_TEXTS = "('pending', 'sending', 'sent')"


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is refused rather than guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the store needs timezone-aware datetimes")
    return moment.astimezone(UTC)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _enqueue_args(item: OutboxItem) -> tuple[Any, ...]:
    if item.status not in (OutboxStatus.PENDING, OutboxStatus.HELD):
        raise ValueError(f"enqueue a pending or held item, not a {item.status.value} one")
    if not item.idempotency_key:
        raise ValueError("an outbox item needs an idempotency key")
    return (
        item.id,
        item.idempotency_key,
        item.kind.value,
        item.call_id,
        item.line,
        item.destination,
        _json(item.payload),
        item.status.value,
        item.attempts,
        item.next_attempt_at,
        item.claimed_by,
        item.claimed_until,
        item.provider_id,
        item.last_error,
        item.created_at,
        item.updated_at,
        item.sent_at,
    )


def _inbound_message_key(provider: str, message_id: str) -> str:
    """The state key of an inbound provider message already taken (replay protection)."""
    return f"inbound_sms.{provider}.{message_id}"


def _window_args(number: str, line: str, window_seconds: float, now: datetime) -> tuple[Any, ...]:
    return (number, line, now, now - timedelta(seconds=window_seconds))


def _outbox_item(row: Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        kind=OutboxKind(row["kind"]),
        call_id=row["call_id"],
        line=row["line"],
        destination=row["destination"],
        payload=json.loads(row["payload"]),
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        claimed_by=row["claimed_by"],
        claimed_until=row["claimed_until"],
        provider_id=row["provider_id"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
    )


def _call(row: Row) -> CallRecord:
    return CallRecord.from_json(json.loads(row["record"]))


class _NotTaken(Exception):
    """Rolls back a transaction whose statement found nothing to do."""


class SqlStore(InboxQueries, abc.ABC):
    """Implements `Store` over `_fetch` and `_transaction`, which a backend provides."""

    backend: ClassVar[str]
    # UPDATE ... RETURNING the claimed rows; $1 worker, $2 lease end, $3 now, $4 limit.
    claim_sql: ClassVar[str]

    def __init__(self, host: str) -> None:
        self.host = host

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any, write: bool = False) -> list[Row]:
        """Run one statement atomically, in a write transaction if `write` (SQLite may share the commit
        with other statements), and return its rows, timestamps as aware UTC datetimes, JSON as text."""

    @abc.abstractmethod
    async def _transaction(self, work: Callable[[Run], Coroutine[Any, Any, _T]]) -> _T:
        """Run `work`, which awaits nothing but the statements it runs through its argument (same
        contract as `_fetch`), in one write transaction: all of them take effect or none."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def save_call(self, record: CallRecord) -> None:
        """A final record updates the inbox in the same transaction."""
        if not record.ended:
            await self._fetch(_SAVE_CALL, *self._call_values(record), write=True)
            return

        async def save_final(run: Run) -> None:
            await run(_SAVE_CALL, *self._call_values(record))
            await apply_final(run, record)

        try:
            await self._transaction(save_final)
        except Exception:
            # The record matters more than its inbox item: stored alone if the inbox cannot take it (if
            # the database is down, this fails too and the writer retries both).
            log.exception("inbox_update_failed", call_id=record.id)
            await self._fetch(_SAVE_CALL, *self._call_values(record), write=True)

    @staticmethod
    def _call_values(record: CallRecord) -> tuple[Any, ...]:
        return (
            record.id,
            record.direction.value,
            record.line,
            record.caller,
            record.dialed,
            record.started_at,
            record.ended_at,
            record.outcome.value if record.outcome else None,
            record.reason.value if record.reason else None,
            record.short,
            record.answered_by,
            record.end_observed,
            record.host,
            _json(record.to_json()),
            datetime.now(UTC),
        )

    async def get_call(self, call_id: str) -> CallRecord | None:
        rows = await self._fetch("SELECT record FROM calls WHERE id = $1", call_id)
        return _call(rows[0]) if rows else None

    async def list_calls(
        self,
        *,
        limit: int = 50,
        since: datetime | None = None,
        line: str | None = None,
        outcome: str | None = None,
        until: datetime | None = None,
    ) -> list[CallRecord]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        conditions: list[str] = []
        args: list[Any] = []
        for condition, value in (
            ("started_at >=", since),
            ("started_at <", until),
            ("line =", line),
            ("outcome =", outcome),
        ):
            if value is not None:
                args.append(value)
                conditions.append(f"{condition} ${len(args)}")
        args.append(min(limit, MAX_LIST_LIMIT))
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        rows = await self._fetch(
            f"SELECT record FROM calls {where}ORDER BY started_at DESC, id DESC LIMIT ${len(args)}", *args
        )
        return [_call(row) for row in rows]

    async def calls_of_number(self, number: str, limit: int) -> list[CallRecord]:
        """Calls from (inbound) or to (outbound) `number`, newest first."""
        rows = await self._fetch(
            "SELECT record FROM calls WHERE (direction = 'inbound' AND caller = $1) "
            "OR (direction = 'outbound' AND dialed = $1) ORDER BY started_at DESC, id DESC LIMIT $2",
            number,
            min(limit, MAX_LIST_LIMIT),
        )
        return [_call(row) for row in rows]

    async def open_calls(self, host: str | None = None) -> list[CallRecord]:
        if host is None:
            rows = await self._fetch(
                "SELECT record FROM calls WHERE ended_at IS NULL ORDER BY started_at, id"
            )
        else:
            rows = await self._fetch(
                "SELECT record FROM calls WHERE ended_at IS NULL AND host = $1 ORDER BY started_at, id", host
            )
        return [_call(row) for row in rows]

    async def enqueue(self, item: OutboxItem) -> bool:
        rows = await self._fetch(_ENQUEUE, *_enqueue_args(item), write=True)
        return bool(rows)

    async def enqueue_text(self, item: OutboxItem, window_seconds: float) -> bool:
        if item.line is None:
            raise ValueError("a text is enqueued for a line")
        window = _window_args(item.destination, item.line, window_seconds, item.created_at)

        async def reserve_and_enqueue(run: Run) -> None:
            for sql, args in ((_RESERVE_WINDOW, window), (_ENQUEUE, _enqueue_args(item))):
                if not await run(sql, *args):
                    raise _NotTaken

        try:
            await self._transaction(reserve_and_enqueue)
        except _NotTaken:
            return False
        return True

    async def claim_due(
        self, worker: str, now: datetime, limit: int = 10, lease_seconds: float = 60.0
    ) -> list[OutboxItem]:
        if limit < 1 or lease_seconds <= 0:
            raise ValueError("claim at least one item for a positive lease")
        rows = await self._fetch(
            self.claim_sql, worker, now + timedelta(seconds=lease_seconds), now, limit, write=True
        )
        items = [_outbox_item(row) for row in rows]
        items.sort(key=lambda item: (item.next_attempt_at, item.created_at, item.id))
        return items

    async def end_leases_of_host(self, host: str, now: datetime) -> int:
        prefix = f"{host}/"
        rows = await self._fetch(
            "UPDATE outbox SET claimed_until = $2 WHERE status = 'sending' AND claimed_until > $2 "
            "AND substr(claimed_by, 1, $3) = $1 RETURNING id",
            prefix,
            now,
            len(prefix),
            write=True,
        )
        return len(rows)

    async def mark_sent(self, item_id: str, provider_id: str | None, now: datetime) -> bool:
        return await self._update_outbox(
            "status = 'sent', provider_id = $2, sent_at = $3, updated_at = $3, "
            "claimed_by = NULL, claimed_until = NULL",
            "status <> 'sent'",
            item_id,
            provider_id,
            now,
        )

    async def mark_failed(self, item_id: str, error: str, now: datetime, retry_at: datetime | None) -> bool:
        status = OutboxStatus.FAILED if retry_at is None else OutboxStatus.PENDING
        return await self._update_outbox(
            "status = $2, last_error = $3, updated_at = $4, next_attempt_at = COALESCE($5, next_attempt_at), "
            "claimed_by = NULL, claimed_until = NULL",
            f"status IN {_UNDELIVERED}",
            item_id,
            status.value,
            error,
            now,
            retry_at,
        )

    async def mark_held(self, item_id: str, reason: str, now: datetime) -> bool:
        return await self._update_outbox(
            "status = 'held', last_error = $2, updated_at = $3, claimed_by = NULL, claimed_until = NULL",
            "status IN ('pending', 'sending')",
            item_id,
            reason,
            now,
        )

    async def release_held(self, item_id: str, next_attempt_at: datetime, now: datetime) -> bool:
        return await self._update_outbox(
            "status = 'pending', next_attempt_at = $2, updated_at = $3",
            "status = 'held'",
            item_id,
            next_attempt_at,
            now,
        )

    async def _update_outbox(self, assignments: str, condition: str, item_id: str, *args: Any) -> bool:
        rows = await self._fetch(
            f"UPDATE outbox SET {assignments} WHERE id = $1 AND {condition} RETURNING id",
            item_id,
            *args,
            write=True,
        )
        return bool(rows)

    async def cancel(
        self,
        *,
        reason: str,
        now: datetime,
        item_id: str | None = None,
        call_id: str | None = None,
        kind: OutboxKind | None = None,
    ) -> int:
        if item_id is None and call_id is None:
            raise ValueError("cancel needs an item id or a call id")
        args: list[Any] = [reason, now]
        conditions = [f"status IN {_UNDELIVERED}"]
        for column, value in (("id", item_id), ("call_id", call_id), ("kind", kind.value if kind else None)):
            if value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        rows = await self._fetch(
            "UPDATE outbox SET status = 'cancelled', last_error = $1, updated_at = $2, "
            f"claimed_by = NULL, claimed_until = NULL WHERE {' AND '.join(conditions)} RETURNING id",
            *args,
            write=True,
        )
        return len(rows)

    async def outbox_for_call(self, call_id: str) -> list[OutboxItem]:
        rows = await self._fetch(f"{_OUTBOX_SELECT} WHERE call_id = $1 ORDER BY created_at, id", call_id)
        return [_outbox_item(row) for row in rows]

    async def outbox_for_calls(self, call_ids: Sequence[str]) -> dict[str, list[OutboxItem]]:
        """`outbox_for_call` of several calls in one query; calls without items are left out."""
        if not call_ids:
            return {}
        placeholders = ", ".join(f"${n}" for n in range(1, len(call_ids) + 1))
        rows = await self._fetch(
            f"{_OUTBOX_SELECT} WHERE call_id IN ({placeholders}) ORDER BY created_at, id", *call_ids
        )
        found: dict[str, list[OutboxItem]] = {}
        for row in rows:
            found.setdefault(row["call_id"], []).append(_outbox_item(row))
        return found

    async def outbox_depth(self) -> dict[str, int]:
        depth = {status.value: 0 for status in OutboxStatus}
        for row in await self._fetch("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status"):
            depth[row["status"]] = int(row["n"])
        return depth

    async def set_opt_out(self, number: str, opted_out: bool, source: str, now: datetime) -> None:
        await self._fetch(
            "INSERT INTO opt_outs (number, opted_out, source, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (number) DO UPDATE SET opted_out = excluded.opted_out, source = excluded.source, "
            "updated_at = excluded.updated_at",
            number,
            opted_out,
            source,
            now,
            write=True,
        )

    async def is_opted_out(self, number: str) -> bool:
        rows = await self._fetch("SELECT opted_out FROM opt_outs WHERE number = $1", number)
        return bool(rows) and bool(rows[0]["opted_out"])

    async def list_opt_outs(self) -> list[OptOut]:
        rows = await self._fetch(
            "SELECT number, source, updated_at FROM opt_outs WHERE opted_out ORDER BY number"
        )
        return [OptOut(number=row["number"], source=row["source"], at=row["updated_at"]) for row in rows]

    async def reserve_text_window(self, number: str, line: str, window_seconds: float, now: datetime) -> bool:
        rows = await self._fetch(
            _RESERVE_WINDOW, *_window_args(number, line, window_seconds, now), write=True
        )
        return bool(rows)

    async def last_text_to(self, number: str, line: str) -> datetime | None:
        rows = await self._fetch(
            "SELECT reserved_at FROM text_windows WHERE number = $1 AND line = $2", number, line
        )
        return rows[0]["reserved_at"] if rows else None

    async def count_texts_since(self, line: str | None, since: datetime) -> int:
        sql = (
            f"SELECT COUNT(*) AS n FROM outbox WHERE kind = 'sms' AND status IN {_COUNTED_TEXTS} "
            "AND created_at >= $1"
        )
        rows = await (
            self._fetch(sql, since) if line is None else self._fetch(f"{sql} AND line = $2", since, line)
        )
        return int(rows[0]["n"])

    async def remember_inbound_message(self, provider: str, message_id: str, now: datetime) -> bool:
        rows = await self._fetch(
            "INSERT INTO state (key, value, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO NOTHING RETURNING key",
            _inbound_message_key(provider, message_id),
            "",
            now,
            write=True,
        )
        return bool(rows)

    async def inbound_message_seen(self, provider: str, message_id: str) -> bool:
        return await self.get_state(_inbound_message_key(provider, message_id)) is not None

    async def get_state(self, key: str) -> str | None:
        rows = await self._fetch("SELECT value FROM state WHERE key = $1", key)
        return str(rows[0]["value"]) if rows else None

    async def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            await self._fetch("DELETE FROM state WHERE key = $1", key, write=True)
            return
        await self._fetch(
            "INSERT INTO state (key, value, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key,
            value,
            datetime.now(UTC),
            write=True,
        )

    async def healthy(self) -> bool:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                await self.set_state(f"callkeeper.heartbeat.{self.host}", datetime.now(UTC).isoformat())
        except Exception:
            return False
        return True
