"""SQLite: one connection owned by one thread, so no statement ever runs on the event loop.

WAL journal with synchronous=NORMAL: a committed write survives the daemon being killed (SIGKILL);
only an OS crash or power loss may lose the last moments. Writes take the write lock up front
(BEGIN IMMEDIATE) so that several processes on one file wait for each other instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar

from callkeeper.store.base import StoreError
from callkeeper.store.inbox import Row, Run
from callkeeper.store.schema import TIMESTAMP_COLUMNS, pending
from callkeeper.store.sql import CLAIM_SET, DUE_PENDING, EXPIRED_LEASES, OUTBOX_COLUMNS, SqlStore, utc

_T = TypeVar("_T")

MEMORY = ":memory:"
BUSY_TIMEOUT_SECONDS = 30.0
MAX_BATCH = 256
FILE_MODE = 0o600
_PLACEHOLDER = re.compile(r"\$(\d+)")


def database_path(url: str) -> str:
    """The file of `sqlite:///abs/path.db` (or `:memory:`); relative paths are the caller's to resolve."""
    prefix = "sqlite://"
    if not url.startswith(prefix):
        raise StoreError(f"not a SQLite URL: {url!r}")
    path = urllib.parse.unquote(url[len(prefix) :])
    if path in (MEMORY, f"/{MEMORY}"):
        return MEMORY
    if not PurePosixPath(path).is_absolute():
        raise StoreError(f"SQLite path must be absolute: sqlite:///abs/path.db, not {url!r}")
    return path


@functools.cache
def _sqlite_sql(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


@contextlib.contextmanager
def _write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """A migration script split into statements (sqlite3's executescript would commit midway)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if any(line.strip() and not line.strip().startswith("--") for line in buffer.splitlines()):
        raise StoreError(f"migration ends with an incomplete statement: {buffer.strip()[:80]!r}")
    return statements


def _complete(work: Coroutine[Any, Any, _T]) -> _T:
    """The result of a coroutine that never waits (its statements run on the spot, in this thread)."""
    try:
        work.send(None)
    except StopIteration as done:
        result: _T = done.value
        return result
    work.close()
    raise RuntimeError("a SQLite transaction may wait on nothing but its own statements")


@dataclass(slots=True)
class _Job:
    work: Callable[[], Any]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    alone: bool = False  # manages its own transaction: opening, closing
    last: bool = False  # the writer thread ends after it


_Outcome = tuple[_Job, Any, Exception | None]


def _settle(outcomes: list[_Outcome]) -> None:
    for job, result, error in outcomes:
        if job.future.done():  # the caller was cancelled; the work is done all the same
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


class SqliteStore(SqlStore):
    """Statements queue up for the one writer thread. Whatever has queued up while it was busy runs
    as one batch in one transaction, each statement atomic on its own (a failing one fails alone), and
    is acknowledged after the batch commits: many concurrent writes share a commit."""

    backend = "sqlite"
    claim_sql = (
        f"UPDATE outbox SET {CLAIM_SET} WHERE id IN "
        f"(SELECT id FROM ({EXPIRED_LEASES}) UNION ALL SELECT id FROM ({DUE_PENDING}) LIMIT $4) "
        f"RETURNING {', '.join(OUTBOX_COLUMNS)}"
    )

    def __init__(self, path: str, host: str) -> None:
        super().__init__(host)
        self.path = path
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._connection: sqlite3.Connection | None = None  # touched only by the writer thread
        self._closed = False
        threading.Thread(target=self._serve, name=f"callkeeper-sqlite-{path}", daemon=True).start()

    @classmethod
    async def open(cls, url: str, host: str) -> SqliteStore:
        store = cls(database_path(url), host)
        try:
            await store._submit(store._connect, write=True, alone=True)
        except BaseException:
            await store.close()
            raise
        return store

    async def _submit(
        self, work: Callable[[], _T], *, write: bool, alone: bool = False, last: bool = False
    ) -> _T:
        if self._closed and not last:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._jobs.put(_Job(work, write, loop, future, alone, last))
        return await future

    async def _fetch(self, sql: str, *args: Any, write: bool = False) -> list[Row]:
        return await self._submit(
            functools.partial(self._run, _sqlite_sql(sql), [_param(arg) for arg in args]), write=write
        )

    async def _transaction(self, work: Callable[[Run], Coroutine[Any, Any, _T]]) -> _T:
        return await self._submit(functools.partial(self._run_transaction, work), write=True)

    async def close(self) -> None:
        """Waits for the writes queued before it, then closes the connection and ends the thread."""
        if self._closed:
            return
        self._closed = True
        await self._submit(self._disconnect, write=False, alone=True, last=True)

    # Everything below runs in the writer thread.

    def _serve(self) -> None:
        waiting: _Job | None = None
        while True:
            job = waiting or self._jobs.get()
            waiting = None
            if job.alone:
                outcomes = [self._attempt(job)]
            else:
                batch = [job]
                while len(batch) < MAX_BATCH:
                    try:
                        following = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if following.alone:
                        waiting = following
                        break
                    batch.append(following)
                outcomes = self._run_batch(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            for outcome in outcomes:
                by_loop.setdefault(outcome[0].loop, []).append(outcome)
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_settle, settled)
            if job.last:
                return

    @staticmethod
    def _attempt(job: _Job) -> _Outcome:
        try:
            return job, job.work(), None
        except Exception as error:
            return job, None, error

    def _run_batch(self, batch: list[_Job]) -> list[_Outcome]:
        connection = self._connection
        if connection is None:
            return [(job, None, StoreError("the store is closed")) for job in batch]
        write = any(job.write for job in batch)
        outcomes: list[_Outcome] = []
        try:
            if write:
                connection.execute("BEGIN IMMEDIATE")
            for job in batch:
                outcome = self._attempt(job)
                if outcome[2] is not None and write and not connection.in_transaction:
                    raise outcome[2]  # the error took the whole transaction with it
                outcomes.append(outcome)
            if write:
                connection.execute("COMMIT")
        except Exception as error:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            return [(job, None, error) for job in batch]
        return outcomes

    def _connect(self) -> None:
        try:
            if self.path != MEMORY:
                # Callers' numbers and texts: readable by the daemon's user alone, whatever the umask.
                # SQLite gives the -wal and -shm files the mode of the database file.
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE))
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._connection = connection
        if self.path != MEMORY:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        self._migrate(connection)

    def _migrate(self, connection: sqlite3.Connection) -> None:
        with _write_transaction(connection):
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            (current,) = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            for migration in pending("sqlite", current):
                for statement in _statements(migration.sql):
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, _param(datetime.now(UTC))),
                )

    def _run(self, sql: str, args: Sequence[Any]) -> list[Row]:
        assert self._connection is not None
        cursor = self._connection.execute(sql, args)
        rows = cursor.fetchall()
        if not rows:
            return []
        names = [column[0] for column in cursor.description]
        timestamps = [index for index, name in enumerate(names) if name in TIMESTAMP_COLUMNS]
        result = []
        for values in rows:
            row = dict(zip(names, values, strict=True))
            for index in timestamps:
                if values[index] is not None:
                    row[names[index]] = datetime.fromisoformat(values[index])
            result.append(row)
        return result

    def _run_transaction(self, work: Callable[[Run], Coroutine[Any, Any, _T]]) -> _T:
        """Inside the batch's transaction, a savepoint makes `work` all or nothing on its own."""
        assert self._connection is not None
        connection = self._connection

        async def run(sql: str, *args: Any) -> list[Row]:
            return self._run(_sqlite_sql(sql), [_param(arg) for arg in args])

        connection.execute("SAVEPOINT work")
        try:
            result = _complete(work(run))
        except BaseException:
            connection.execute("ROLLBACK TO work")
            connection.execute("RELEASE work")
            raise
        connection.execute("RELEASE work")
        return result

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
