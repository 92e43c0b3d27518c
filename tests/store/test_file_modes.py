"""The SQLite database holds callers' numbers and texts: its files are the daemon user's alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from callkeeper.store import open_store


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("loose_umask")
async def test_the_database_and_its_wal_and_shm_files_are_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "callkeeper.db"
    store = await open_store(f"sqlite://{path}", "host-a")
    try:
        await store.set_state("k", "v")
        files = [path, path.with_name("callkeeper.db-wal"), path.with_name("callkeeper.db-shm")]
        assert {file.name: stat.S_IMODE(file.stat().st_mode) for file in files} == {
            file.name: 0o600 for file in files
        }
    finally:
        await store.close()
