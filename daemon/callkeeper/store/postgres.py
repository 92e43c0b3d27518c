"""PostgreSQL through an asyncpg pool; several daemons may share one database.

Claims lock their rows with FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint items;
migrations run under a transaction-scoped advisory lock, so daemons starting together migrate once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from callkeeper.config.redaction import redact
from callkeeper.store.base import StoreError
from callkeeper.store.inbox import Row, Run
from callkeeper.store.schema import pending
from callkeeper.store.sql import CLAIM_SET, DUE_PENDING, EXPIRED_LEASES, OUTBOX_COLUMNS, SqlStore, utc

_T = TypeVar("_T")

POOL_MAX_SIZE = 10
CLOSE_TIMEOUT_SECONDS = 10.0
# pg_advisory_xact_lock key for migrations: "callkeep" in ASCII.
_MIGRATION_LOCK = 0x63616C6C6B656570


def _param(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value


class PostgresStore(SqlStore):
    backend = "postgresql"
    claim_sql = (
        f"WITH expired AS ({EXPIRED_LEASES} FOR UPDATE SKIP LOCKED), "
        f"pending AS ({DUE_PENDING} FOR UPDATE SKIP LOCKED), "
        "due AS (SELECT id FROM expired UNION ALL SELECT id FROM pending LIMIT $4) "
        f"UPDATE outbox SET {CLAIM_SET} FROM due WHERE outbox.id = due.id "
        f"RETURNING {', '.join(f'outbox.{column}' for column in OUTBOX_COLUMNS)}"
    )

    def __init__(self, pool: Any, host: str) -> None:
        super().__init__(host)
        self._pool = pool
        self._closed = False

    @classmethod
    async def open(cls, url: str, host: str) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=POOL_MAX_SIZE)
        except Exception as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
        store = cls(pool, host)
        try:
            await store._migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def _migrate(self) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            current = await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for migration in pending("postgres", current):
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    datetime.now(UTC),
                )

    async def _fetch(self, sql: str, *args: Any, write: bool = False) -> list[Row]:
        if self._closed:
            raise StoreError("the store is closed")
        records = await self._pool.fetch(sql, *[_param(arg) for arg in args])
        return [dict(record) for record in records]

    async def _transaction(self, work: Callable[[Run], Coroutine[Any, Any, _T]]) -> _T:
        if self._closed:
            raise StoreError("the store is closed")
        async with self._pool.acquire() as connection, connection.transaction():

            async def run(sql: str, *args: Any) -> list[Row]:
                return [
                    dict(record) for record in await connection.fetch(sql, *[_param(arg) for arg in args])
                ]

            result: _T = await work(run)
            return result

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            self._pool.terminate()
