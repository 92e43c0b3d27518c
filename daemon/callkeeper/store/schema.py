"""The numbered migrations in `migrations/`, one file per version and dialect, kept in lockstep."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from callkeeper.store.base import SchemaTooNewError, StoreError

DIALECTS = ("sqlite", "postgres")
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgres)\.sql$")

# Columns that hold a point in time; SQLite keeps them as fixed-width UTC text.
TIMESTAMP_COLUMNS = frozenset(
    {
        "started_at",
        "ended_at",
        "updated_at",
        "next_attempt_at",
        "claimed_until",
        "created_at",
        "sent_at",
        "reserved_at",
        "applied_at",
        "handled_at",
        "called_back_at",
        "sms_created_at",
        "sms_sent_at",
    }
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations(dialect: str) -> tuple[Migration, ...]:
    """The migrations of `dialect`, by version, checked to be 1..N without gaps."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}")
    found: list[Migration] = []
    for entry in resources.files("callkeeper.store").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None or match.group(3) != dialect:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError(f"{dialect} migrations are not numbered 1..N: {[m.version for m in found]}")
    return tuple(found)


def pending(dialect: str, current: int) -> tuple[Migration, ...]:
    """What must run on a database at version `current`; refuses a database newer than this code."""
    known = migrations(dialect)
    if current > len(known):
        raise SchemaTooNewError(
            f"the database schema is at version {current} but this callkeeper knows only up to "
            f"{len(known)}: upgrade callkeeper (or point it at another database)"
        )
    return known[current:]
