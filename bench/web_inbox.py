"""The inbox page: how long a signed-in page takes to render over 10,000 open items, and what it weighs.

    python -m bench.web_inbox [--items 10000] [--requests 30]

The items are real: final missed-call records from 10,000 different callers saved into a SQLite store,
which files each into the inbox as the daemon does. The pages are served by the daemon's own web app
(callkeeper.web) over `InboxService`, fetched over HTTP on loopback with a signed-in session. The page
shows the newest 100 items (more on request, up to 10,000); the figures split the store's query from
the page as a whole.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import percentile, print_table, production_logs_to_devnull, write_results
from callkeeper.config.model import (
    AsteriskConfig,
    Config,
    Destination,
    DestinationKind,
    Line,
    Secret,
    User,
)
from callkeeper.inbox.model import InboxFilter
from callkeeper.inbox.service import InboxService
from callkeeper.records import CallRecord, Direction, Outcome, Reason, Step, VoicemailResult
from callkeeper.store import open_store
from callkeeper.store.base import Store
from callkeeper.web.app import SESSION_COOKIE, WebInbox
from callkeeper.web.passwords import hash_password

TARGET_PAGE_MS = 500.0
TARGET_WEIGHT_BYTES = 100_000
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class NoDialer:
    def dial(self, contact: str, line: str, user: str | None, ring_group: str | None) -> str:
        raise NotImplementedError


def missed_call(index: int) -> CallRecord:
    started = T0 + timedelta(seconds=30 * index)
    return CallRecord(
        id=f"bench-{index}",
        direction=Direction.INBOUND,
        line="main",
        caller=f"+1202{index:07d}",
        dialed="+12125550100",
        started_at=started,
        ended_at=started + timedelta(seconds=40),
        outcome=Outcome.MISSED,
        reason=Reason.RING_GROUP_NO_ANSWER,
        voicemail=VoicemailResult(True, 12, "1000@default") if index % 3 == 0 else None,
        steps=(Step("arrived", started, "+12125550100"), Step("ring_group", started, "sales")),
        host="bench",
    )


async def fill(store: Store, items: int) -> None:
    for index in range(items):
        await store.save_call(missed_call(index))


async def timed(action: Callable[[], Awaitable[object]], requests: int) -> list[float]:
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        await action()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def summary(spent: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(spent), "p95_ms": percentile(spent, 95), "max_ms": max(spent)}


async def run(items: int = 10_000, requests: int = 30) -> dict[str, Any]:
    password_hash = hash_password("bench password", n=2**14)
    config = Config(
        asterisk=AsteriskConfig(url="http://127.0.0.1:8088", username="bench", password=Secret("x")),
        lines={"main": Line("main", ("+12125550100",), Destination(DestinationKind.RING_GROUP, "sales"))},
        users={"alice": User("alice", "PJSIP/alice", web_password_hash=Secret(password_hash))},
    )
    with tempfile.TemporaryDirectory(prefix="web-inbox-bench-") as folder:
        store = await open_store(f"sqlite:///{Path(folder) / 'bench.db'}", "bench")
        try:
            started = time.perf_counter()
            await fill(store, items)
            fill_seconds = time.perf_counter() - started
            inbox = InboxService(store, lambda: config, NoDialer())
            pages = WebInbox(inbox, store, lambda: config, b"bench session key")
            app = web.Application(middlewares=[pages.middleware])
            pages.add_routes(app)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            _, cookie = pages.signer.issue("alice", password_hash)
            sent: dict[str, int] = {}
            try:
                async with aiohttp.ClientSession(
                    base,
                    cookies={SESSION_COOKIE: cookie},
                    auto_decompress=False,
                    headers={"Accept-Encoding": "gzip"},
                ) as client:

                    async def page(path: str) -> bytes:
                        async with client.get(path) as response:
                            assert response.status == 200, (path, response.status)
                            body = await response.read()
                            sent[path] = len(body)
                            if response.headers.get("Content-Encoding") == "gzip":
                                return gzip.decompress(body)
                            return body

                    html = await page("/")
                    assert html.count(b"<tr data-key=") == min(items, 100), "the page shows 100 rows"
                    css, js = await page("/static/app.css"), await page("/static/app.js")
                    icon = await page("/static/icon.svg")
                    store_query = await timed(
                        lambda: inbox.list(InboxFilter(lines=frozenset({"main"}), limit=101)), requests
                    )
                    first_page = await timed(lambda: page("/"), requests)
                    live_rows = await timed(lambda: page("/inbox/rows"), requests)
                    thousand = await timed(lambda: page("/?limit=1000"), max(3, requests // 10))
            finally:
                await runner.cleanup()
        finally:
            await store.close()
    weight = {name: len(body) for name, body in (("html", html), ("css", css), ("js", js), ("icon", icon))}
    gzipped = {"html": sent["/"], "css": sent["/static/app.css"], "js": sent["/static/app.js"]}
    return {
        "items": items,
        "fill_seconds": round(fill_seconds, 1),
        "store_query_101_items": summary(store_query),
        "inbox_page": summary(first_page),
        "live_rows": summary(live_rows),
        "inbox_page_1000_rows": summary(thousand),
        "page_weight_bytes": {**weight, "total": sum(weight.values())},
        "page_weight_sent_bytes": {**gzipped, "total": sum(gzipped.values())},
        "targets": {"inbox_page_median_ms": TARGET_PAGE_MS, "page_weight_bytes": TARGET_WEIGHT_BYTES},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    production_logs_to_devnull()
    result = asyncio.run(run(args.items, args.requests))
    print_table(
        f"The inbox page over {result['items']:,} open items ({result['fill_seconds']} s to file them)",
        ("what", "median ms", "p95 ms", "max ms"),
        [
            (name, figures["median_ms"], figures["p95_ms"], figures["max_ms"])
            for name, figures in (
                ("store query, newest 101 items", result["store_query_101_items"]),
                ("inbox page (100 rows)", result["inbox_page"]),
                ("live refresh of the rows", result["live_rows"]),
                ("inbox page, 1,000 rows", result["inbox_page_1000_rows"]),
            )
        ],
    )
    weight, gzipped = result["page_weight_bytes"], result["page_weight_sent_bytes"]
    print_table(
        "Page weight (the inbox with 100 rows)",
        ("part", "bytes", "bytes sent (gzip)"),
        [(part, weight[part], gzipped.get(part, "")) for part in ("html", "css", "js", "icon", "total")],
    )
    write_results("web_inbox", result)
    ok = result["inbox_page"]["median_ms"] <= TARGET_PAGE_MS and weight["total"] <= TARGET_WEIGHT_BYTES
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
