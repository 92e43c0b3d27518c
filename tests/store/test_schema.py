from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import pytest

from callkeeper.config.redaction import redact as redact_url
from callkeeper.store import SchemaTooNewError, Store, StoreError, open_store
from callkeeper.store.schema import DIALECTS, migrations

from .conftest import raw_sql


def test_migrations_exist_for_both_dialects_in_lockstep() -> None:
    versions = {dialect: [(m.version, m.name) for m in migrations(dialect)] for dialect in DIALECTS}
    assert versions["sqlite"], "no migrations found: are the .sql files packaged?"
    assert versions["sqlite"] == versions["postgres"]


async def test_migrations_are_idempotent(store: Store, store_url: str) -> None:
    await store.set_state("kept", "yes")
    await store.close()
    for _ in range(2):
        reopened = await open_store(store_url, "host-a")
        assert await reopened.get_state("kept") == "yes"
        await reopened.close()
    rows = await raw_sql(store_url, "SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(m.version, m.name) for m in migrations("sqlite")]


async def test_daemons_opening_together_migrate_once(store_url: str) -> None:
    stores = [await open_store(store_url, f"host-{n}") for n in range(3)]
    for opened in stores:
        await opened.close()
    rows = await raw_sql(store_url, "SELECT COUNT(*) FROM schema_version")
    assert rows == [(len(migrations("sqlite")),)]


async def test_newer_schema_is_refused(store: Store, store_url: str) -> None:
    await store.close()
    newer = len(migrations("sqlite")) + 1
    await raw_sql(
        store_url,
        "INSERT INTO schema_version (version, name, applied_at) "
        f"VALUES ({newer}, 'future', CURRENT_TIMESTAMP)",
    )
    with pytest.raises(SchemaTooNewError, match=f"version {newer}"):
        await open_store(store_url, "host-a")


@pytest.mark.postgres
async def test_both_backends_have_the_same_tables_and_columns(sqlite_url: str, postgres_url: str) -> None:
    for url in (sqlite_url, postgres_url):
        await (await open_store(url, "host-a")).close()
    sqlite_columns = set()
    for (table,) in await raw_sql(sqlite_url, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in await raw_sql(sqlite_url, f"PRAGMA table_info({table})"):
            sqlite_columns.add((table, row[1]))
    postgres_columns = set(
        await raw_sql(
            postgres_url,
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()",
        )
    )
    assert sqlite_columns == postgres_columns


async def test_healthy_until_closed(store: Store) -> None:
    assert await store.healthy()
    await store.close()
    assert not await store.healthy()
    with pytest.raises(StoreError, match="closed"):
        await store.get_state("anything")
    await store.close()


async def test_memory_database() -> None:
    store = await open_store("sqlite:///:memory:", "host-a")
    await store.set_state("k", "v")
    assert await store.get_state("k") == "v"
    assert store.backend == "sqlite"
    await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://relative/callkeeper.db", "absolute"),
        ("mysql://root:hunter2@db/callkeeper", "unsupported"),
        ("sqlite:///nonexistent-dir/sub/callkeeper.db", "cannot open"),
    ],
)
async def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as raised:
        await open_store(url, "host-a")
    assert "hunter2" not in str(raised.value)


@pytest.mark.postgres
async def test_postgres_connection_error_hides_the_password(postgres_dsn: str) -> None:
    with pytest.raises(StoreError, match="cannot connect") as raised:
        await open_store("postgresql://callkeeper:hunter2@127.0.0.1:1/callkeeper", "host-a")
    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value)


def test_redact_url() -> None:
    assert redact_url("postgresql://ck:s3cr%40t@db:5432/ck") == "postgresql://ck:***@db:5432/ck"
    assert (
        redact_url("postgresql://db/ck?user=ck&password=s3cret") == "postgresql://db/ck?user=ck&password=***"
    )
    assert (
        redact_url("sqlite:///var/lib/callkeeper/callkeeper.db")
        == "sqlite:///var/lib/callkeeper/callkeeper.db"
    )


async def test_sqlite_waits_for_the_write_lock_off_the_event_loop(
    sqlite_store: Store, sqlite_url: str
) -> None:
    """Another process holding the write lock delays our write, never the event loop."""
    with contextlib.closing(
        sqlite3.connect(sqlite_url.removeprefix("sqlite://"), isolation_level=None)
    ) as other:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(sqlite_store.set_state("k", "v"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(0.2)
        assert loop.time() - started < 1.0
        assert not write.done()
        other.execute("COMMIT")
    await asyncio.wait_for(write, 10)
    assert await sqlite_store.get_state("k") == "v"
