"""Store: call-record and outbox writes per second on SQLite and PostgreSQL, and proof that a slow
store never delays event handling (records leave the event path through `RecordWriter`).

    python -m bench.store_bench [--records 2000] [--no-postgres]

The records are the ones the engine saved while replaying the recorded journal (bench/replay.py):
real journeys, in progress and final. PostgreSQL is `scripts/postgres-sandbox` on
$CALLKEEPER_PG_SANDBOX_PORT (default 5433): reused if it runs, else started and stopped here;
the benchmark works in a schema of its own and drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from tests.store.conftest import with_search_path

from bench.common import (
    REPO,
    percentile,
    print_table,
    production_logs_to_devnull,
    run_script,
    write_results,
)
from bench.journal import Journal
from bench.replay import DEFAULT_JOURNAL, Pass, prepared, replay_config, run_pass
from callkeeper.records import CallRecord
from callkeeper.store import OutboxItem, OutboxKind, Store, open_store

PG_SCRIPT = REPO / "scripts" / "postgres-sandbox"
SLOW_STORE_SECONDS = 0.05
CONCURRENCY = 16


class CapturingSink:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    async def save_call(self, record: CallRecord) -> None:
        self.records.append(record)


class SlowSink:
    """A store that takes `delay` seconds more for every write (a far or busy database)."""

    def __init__(self, store: Store, delay: float) -> None:
        self.store = store
        self.delay = delay

    async def save_call(self, record: CallRecord) -> None:
        await asyncio.sleep(self.delay)
        await self.store.save_call(record)


@contextlib.asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    running = run_script(PG_SCRIPT, "env", timeout=600)
    started = running.returncode != 0
    done = run_script(PG_SCRIPT, "up", timeout=600) if started else running
    if done.returncode != 0:
        raise SystemExit(f"scripts/postgres-sandbox up failed:\n{done.stderr}")
    dsn = next(line.partition("=")[2] for line in done.stdout.splitlines() if "=" in line)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(dsn)
    await connection.execute(f"CREATE SCHEMA {schema}")
    await connection.close()
    try:
        yield with_search_path(dsn, schema)
    finally:
        connection = await asyncpg.connect(dsn)
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()
        if started:
            run_script(PG_SCRIPT, "down", timeout=600)


def many(records: list[CallRecord], count: int) -> list[CallRecord]:
    """`count` writes shaped like the replay's: each call's versions in order, under fresh ids."""
    out: list[CallRecord] = []
    while len(out) < count:
        suffix = uuid.uuid4().hex[:6]
        out += [replace(r, id=f"{r.id}-{suffix}") for r in records]
    return out[:count]


async def write_rates(url: str, records: list[CallRecord], outbox: int) -> dict[str, float]:
    store = await open_store(url, "bench")
    try:
        t0 = time.perf_counter()
        for record in records:
            await store.save_call(record)
        sequential = len(records) / (time.perf_counter() - t0)

        again = many(records, len(records))
        t0 = time.perf_counter()
        for start in range(0, len(again), CONCURRENCY):
            await asyncio.gather(*(store.save_call(r) for r in again[start : start + CONCURRENCY]))
        concurrent = len(again) / (time.perf_counter() - t0)

        now = datetime.now(UTC)
        items = [
            OutboxItem.new(
                kind=OutboxKind.SMS,
                idempotency_key=f"sms:bench-{uuid.uuid4().hex}",
                destination="+14155550111",
                payload={"body": "Sorry we missed your call. We will call you back."},
                now=now,
                call_id=f"bench-{n}",
                line="main",
            )
            for n in range(outbox)
        ]
        t0 = time.perf_counter()
        for item in items:
            await store.enqueue(item)
        enqueue = outbox / (time.perf_counter() - t0)
        return {
            "records_per_s": sequential,
            f"records_per_s_{CONCURRENCY}_at_once": concurrent,
            "outbox_enqueues_per_s": enqueue,
        }
    finally:
        await store.close()


def latency(run: Pass) -> dict[str, float]:
    return {
        "handle_p50_us": percentile(run.handle_ns, 50) / 1e3,
        "handle_p99_us": percentile(run.handle_ns, 99) / 1e3,
        "handle_max_us": max(run.handle_ns) / 1e3,
        "records_saved": run.records_saved,
        "records_written": run.records_written,
        "drain_s": run.drain,
    }


async def run(
    count: int, outbox: int, postgres: bool, slow_seconds: float = SLOW_STORE_SECONDS
) -> dict[str, Any]:
    journal = Journal.read(DEFAULT_JOURNAL)
    config = replay_config(journal)
    entries = prepared(journal, as_text=False)
    capture = CapturingSink()
    await run_pass(config, entries, from_text=False, sink=capture)
    records = many(capture.records, count)
    results: dict[str, Any] = {"records": len(records), "outbox_items": outbox, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="callkeeper-store-") as tmp:
        sqlite_url = f"sqlite://{Path(tmp) / 'bench.db'}"
        results["backends"]["sqlite"] = await write_rates(sqlite_url, records, outbox)
        if postgres:
            async with postgres_url() as url:
                results["backends"]["postgresql"] = await write_rates(url, records, outbox)
        # The event path with the store behind it: at once, SQLite, SQLite + 50 ms a write.
        store = await open_store(f"sqlite://{Path(tmp) / 'events.db'}", "bench")
        try:
            paths = {
                "memory": await run_pass(config, entries, from_text=False),
                "sqlite": await run_pass(config, entries, from_text=False, sink=store),
                f"sqlite + {slow_seconds * 1e3:.0f} ms per write": await run_pass(
                    config, entries, from_text=False, sink=SlowSink(store, slow_seconds)
                ),
            }
        finally:
            await store.close()
    results["event_path"] = {name: latency(run) for name, run in paths.items()}
    results["slow_store_verdicts_equal_live"] = all(
        run.verdicts == journal.verdicts for run in paths.values() if run.verdicts
    )
    print_table(
        f"store writes, {len(records)} call records (real journeys), {outbox} outbox items",
        ["backend", "records/s (one writer)", f"records/s ({CONCURRENCY} at once)", "outbox enqueues/s"],
        [
            [name, r["records_per_s"], r[f"records_per_s_{CONCURRENCY}_at_once"], r["outbox_enqueues_per_s"]]
            for name, r in results["backends"].items()
        ],
    )
    print_table(
        f"event handling with the store behind it ({len(journal.verdicts)} calls replayed)",
        [
            "records go to",
            "on_event p50 us",
            "p99 us",
            "max us",
            "saved / written",
            "drain after last event s",
        ],
        [
            [
                name,
                r["handle_p50_us"],
                r["handle_p99_us"],
                r["handle_max_us"],
                f"{r['records_saved']} / {r['records_written']}",
                r["drain_s"],
            ]
            for name, r in results["event_path"].items()
        ],
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--outbox", type=int, default=1000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--name", default="store", help="bench/results/NAME.json")
    args = parser.parse_args()
    production_logs_to_devnull()
    result = asyncio.run(run(args.records, args.outbox, not args.no_postgres))
    write_results(args.name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
