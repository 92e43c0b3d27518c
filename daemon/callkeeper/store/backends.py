"""Opens the store a storage URL names: the one module that knows every backend."""

from __future__ import annotations

from callkeeper.config.redaction import redact
from callkeeper.store.base import Store, StoreError
from callkeeper.store.postgres import PostgresStore
from callkeeper.store.sqlite import SqliteStore


async def open_store(url: str, host: str) -> Store:
    """Open (and migrate) the store at `url`: `sqlite:///abs/path.db`, `sqlite:///:memory:` or
    `postgresql://user:pass@host:port/db`. `host` names this daemon in heartbeats and leases."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return await SqliteStore.open(url, host)
    if scheme in ("postgresql", "postgres"):
        return await PostgresStore.open(url, host)
    raise StoreError(f"unsupported storage URL {redact(url)!r}: use sqlite:///path or postgresql://...")
