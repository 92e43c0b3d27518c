"""Inbox: time to list an inbox of 10,000 open items on SQLite and PostgreSQL, and the cheap queries a
live page repeats (the change counter, one item).

    python -m bench.inbox [--items 10000] [--runs 7] [--no-postgres]

The store is filled through `save_call`, as the daemon fills it: every item a caller with one to three
missed calls (a third with a voicemail, a quarter with a follow-up text in the outbox) among answered
calls that resolve nothing. PostgreSQL as in bench/store_bench.py (scripts/postgres-sandbox, a schema of
its own, dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import percentile, print_table, production_logs_to_devnull, write_results
from bench.store_bench import postgres_url
from callkeeper.inbox.model import MAX_INBOX_LIMIT, InboxFilter
from callkeeper.records import CallRecord, Direction, Outcome, Reason, VoicemailResult
from callkeeper.store import open_store
from callkeeper.store.base import OutboxItem, OutboxKind, Store

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LINES = ("sales", "support", "billing")
CONCURRENCY = 16
PAGE = 500


def calls_of(index: int) -> list[CallRecord]:
    """The missed calls of caller `index` (1 to 3), and an answered call of another number."""
    caller = f"+1555{index:07d}"
    line = LINES[index % len(LINES)]
    started = T0 + timedelta(seconds=30 * index)
    missed = [
        CallRecord(
            id=f"m{index}-{n}",
            direction=Direction.INBOUND,
            line=line,
            caller=caller,
            dialed="+15559870000",
            started_at=started + timedelta(seconds=n),
            ended_at=started + timedelta(seconds=n + 25),
            outcome=Outcome.MISSED,
            reason=Reason.RING_GROUP_NO_ANSWER,
            voicemail=VoicemailResult(True, 12, "1000@default") if index % 3 == 0 and n == 0 else None,
            host="bench",
        )
        for n in range(1 + index % 3)
    ]
    answered = CallRecord(
        id=f"a{index}",
        direction=Direction.INBOUND,
        line=line,
        caller=f"+1666{index:07d}",
        dialed="+15559870000",
        started_at=started,
        ended_at=started + timedelta(seconds=90),
        outcome=Outcome.ANSWERED,
        reason=Reason.ANSWERED,
        answered_by="alice",
        host="bench",
    )
    return [*missed, answered]


async def fill(store: Store, items: int) -> float:
    """Seconds to store every item's calls (CONCURRENCY callers at once) and their texts."""
    started = time.perf_counter()
    for first in range(0, items, CONCURRENCY):
        batch = range(first, min(first + CONCURRENCY, items))

        async def save(index: int) -> None:
            if index % 4 == 0:  # planned before the final record is stored, as the daemon does
                await store.enqueue(
                    OutboxItem.new(
                        kind=OutboxKind.SMS,
                        idempotency_key=f"sms:m{index}-0",
                        destination=f"+1555{index:07d}",
                        payload={"body": "Sorry we missed you"},
                        now=T0,
                        call_id=f"m{index}-0",
                        line=LINES[index % len(LINES)],
                    )
                )
            for record in calls_of(index):
                await store.save_call(record)

        await asyncio.gather(*(save(index) for index in batch))
    return time.perf_counter() - started


async def timed(runs: int, work: Callable[[], Awaitable[object]]) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - started)
    return {"median_ms": statistics.median(seconds) * 1e3, "max_ms": max(seconds) * 1e3}


async def measure(url: str, items: int, runs: int) -> dict[str, Any]:
    store = await open_store(url, "bench")
    try:
        fill_seconds = await fill(store, items)
        listed = await store.inbox_items(InboxFilter(limit=MAX_INBOX_LIMIT))
        assert len(listed) == min(items, MAX_INBOX_LIMIT), len(listed)
        assert sum(1 for item in listed if item.followup_text) == (items + 3) // 4
        middle = listed[len(listed) // 2].call_id
        every = await timed(runs, lambda: store.inbox_items(InboxFilter(limit=MAX_INBOX_LIMIT)))
        page = await timed(runs, lambda: store.inbox_items(InboxFilter(limit=PAGE)))
        one_line = await timed(
            runs, lambda: store.inbox_items(InboxFilter(lines=frozenset({"sales"}), limit=PAGE))
        )
        search = await timed(runs, lambda: store.inbox_items(InboxFilter(number="0004242", limit=PAGE)))
        version_seconds = []
        for _ in range(runs * 20):
            started = time.perf_counter()
            await store.inbox_version()
            version_seconds.append(time.perf_counter() - started)
        item = await timed(runs * 5, lambda: store.inbox_item(middle))
    finally:
        await store.close()
    return {
        "items": len(listed),
        "fill_s": fill_seconds,
        "list_all_ms": every,
        f"list_first_{PAGE}_ms": page,
        f"list_one_line_first_{PAGE}_ms": one_line,
        "number_search_ms": search,
        "version_p50_ms": percentile(version_seconds, 50) * 1e3,
        "version_p99_ms": percentile(version_seconds, 99) * 1e3,
        "one_item_ms": item,
    }


async def run(items: int, runs: int, postgres: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"items": items, "runs": runs, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="callkeeper-inbox-") as tmp:
        results["backends"]["sqlite"] = await measure(f"sqlite://{Path(tmp) / 'inbox.db'}", items, runs)
    if postgres:
        async with postgres_url() as url:
            results["backends"]["postgresql"] = await measure(url, items, runs)
    print_table(
        f"inbox of {items} open items (median of {runs} runs, ms)",
        [
            "backend",
            "list all",
            f"first {PAGE}",
            f"one line, first {PAGE}",
            "number search",
            "version p50",
            "version p99",
            "one item",
            "fill s",
        ],
        [
            [
                name,
                r["list_all_ms"]["median_ms"],
                r[f"list_first_{PAGE}_ms"]["median_ms"],
                r[f"list_one_line_first_{PAGE}_ms"]["median_ms"],
                r["number_search_ms"]["median_ms"],
                r["version_p50_ms"],
                r["version_p99_ms"],
                r["one_item_ms"]["median_ms"],
                r["fill_s"],
            ]
            for name, r in results["backends"].items()
        ],
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--name", default="inbox", help="bench/results/NAME.json")
    args = parser.parse_args()
    production_logs_to_devnull()
    write_results(args.name, asyncio.run(run(args.items, args.runs, not args.no_postgres)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
