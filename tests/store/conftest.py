"""Store fixtures: every backend test runs on SQLite (a temp file) and on a real PostgreSQL.

PostgreSQL comes from $CALLKEEPER_TEST_POSTGRES_DSN, else from scripts/postgres-sandbox, started once per
session and left running (other sessions may share it; `scripts/postgres-sandbox down` stops it). It is
never skipped: no PostgreSQL, failed tests.
Each test gets its own PostgreSQL schema, selected through the DSN's search_path.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callkeeper.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "scripts" / "postgres-sandbox"
DSN_VARIABLE = "CALLKEEPER_TEST_POSTGRES_DSN"
HOST = "host-a"


def _sandbox(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SANDBOX), command],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    configured = os.environ.get(DSN_VARIABLE)
    if configured:
        return configured
    started = _sandbox("up")
    if started.returncode != 0:
        pytest.fail(f"scripts/postgres-sandbox up failed:\n{started.stderr}", pytrace=False)
    dsn = next(
        (
            line.partition("=")[2]
            for line in started.stdout.splitlines()
            if line.startswith(f"{DSN_VARIABLE}=")
        ),
        None,
    )
    if not dsn:
        pytest.fail(f"scripts/postgres-sandbox up printed no DSN:\n{started.stdout}", pytrace=False)
    return dsn


def with_search_path(dsn: str, schema: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    query = [*urllib.parse.parse_qsl(parts.query), ("search_path", schema)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@pytest.fixture
async def postgres_url(postgres_dsn: str) -> AsyncIterator[str]:
    schema = f"test_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()
    yield with_search_path(postgres_dsn, schema)
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await connection.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'callkeeper.db'}"


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    store = await open_store(sqlite_url, HOST)
    yield store
    await store.close()


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[Store]:
    store = await open_store(postgres_url, HOST)
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The database of `store`, to open more stores on it (other daemons) or inspect it raw."""
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: str) -> Store:
    store: Store = request.getfixturevalue(f"{backend}_store")
    return store


@pytest.fixture
async def other_store(store_url: str) -> AsyncIterator[Store]:
    """A second store on the same database: another daemon."""
    store = await open_store(store_url, "host-b")
    yield store
    await store.close()


async def raw_sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on the database behind `url`, outside the store."""
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as connection, connection:
            return list(connection.execute(sql).fetchall())
    connection = await asyncpg.connect(url)
    try:
        return [tuple(record) for record in await connection.fetch(sql)]
    finally:
        await connection.close()
