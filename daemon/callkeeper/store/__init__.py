"""Durable records and the outbox: SQLite (default) and PostgreSQL, same schema and migrations."""

from callkeeper.store.backends import open_store
from callkeeper.store.base import (
    OptOut,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    SchemaTooNewError,
    Store,
    StoreError,
)

__all__ = [
    "OptOut",
    "OutboxItem",
    "OutboxKind",
    "OutboxStatus",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "open_store",
]
