"""SQLite: one connection owned by one thread, so no statement ever runs on the event loop.

WAL journal with synchronous=NORMAL: a committed write survives the daemon being killed (SIGKILL);
only an OS crash or power loss may lose the last moments. Writes take the write lock up front
(BEGIN IMMEDIATE) so that several processes on one file wait for each other instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from pathlib import PurePosixPath
from typing import Any, TypeVar

from callkeeper.store.base import StoreError
from callkeeper.store.schema import TIMESTAMP_COLUMNS, pending
from callkeeper.store.sql import CLAIM_SET, CLAIMABLE, OUTBOX_COLUMNS, Row, SqlStore, utc

_T = TypeVar("_T")

MEMORY = ":memory:"
BUSY_TIMEOUT_SECONDS = 30.0
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


@cache
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


class SqliteStore(SqlStore):
    backend = "sqlite"
    claim_sql = (
        f"UPDATE outbox SET {CLAIM_SET} WHERE id IN (SELECT id FROM outbox WHERE {CLAIMABLE} LIMIT $4) "
        f"RETURNING {', '.join(OUTBOX_COLUMNS)}"
    )

    def __init__(self, path: str, host: str) -> None:
        super().__init__(host)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callkeeper-sqlite")
        self._connection: sqlite3.Connection | None = None  # touched only by the executor's thread
        self._closed = False

    @classmethod
    async def open(cls, url: str, host: str) -> SqliteStore:
        store = cls(database_path(url), host)
        try:
            await store._in_thread(store._connect)
        except BaseException:
            await store.close()
            raise
        return store

    async def _in_thread(self, work: Callable[..., _T], *args: Any) -> _T:
        if self._closed:
            raise StoreError("the store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def _fetch(self, sql: str, *args: Any, write: bool = False) -> list[Row]:
        return await self._in_thread(self._run, _sqlite_sql(sql), [_param(arg) for arg in args], write)

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)

    # Everything below runs in the executor's thread.

    def _connect(self) -> None:
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
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

    def _run(self, sql: str, args: Sequence[Any], write: bool) -> list[Row]:
        connection = self._connection
        if connection is None:
            raise StoreError("the store is closed")
        if write:
            with _write_transaction(connection):
                cursor = connection.execute(sql, args)
                rows = cursor.fetchall()
        else:
            cursor = connection.execute(sql, args)
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

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
