"""Records the journal that bench/replay.py replays: real calls of every verdict through the sandbox
Asterisk and the real daemon, run in this process with a tee on its event path.

    python -m bench.record [--calls 300] [--rate 4] [--out bench/data/journal.jsonl.gz]
    python -m bench.record --without-event-filter --out bench/data/journal-unfiltered.jsonl.gz

The tee sees the decoded websocket messages before `parse_event` and every input the daemon feeds
its engine from elsewhere (timers, failed ARI requests, endpoint states at connect), in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from tests.integration.daemon import daemon_config, free_port
from tests.integration.sandbox_calls import PlacedCall, place_call

from bench.common import DATA, AsteriskSandbox, asterisk_sandbox, machine, print_table
from bench.journal import Journal, encode_input, verdict_of
from bench.scenarios import EVERY_VERDICT, Scenario, every_verdict_config, pick
from callkeeper.ari import connection as ari_connection
from callkeeper.ari.events import parse_event
from callkeeper.ari.rest import AriRestClient
from callkeeper.calls import inputs as ev
from callkeeper.config.loader import load_config
from callkeeper.logs import setup_logging
from callkeeper.run import Daemon
from callkeeper.service.call_runner import CallService
from callkeeper.store import open_store

JOURNAL = DATA / "journal.jsonl.gz"
PASSWORD_VARIABLE = "CALLKEEPER_ARI_PASSWORD"
TOKEN_VARIABLE = "CALLKEEPER_API_TOKEN"


class Tee:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.in_event = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        on_event = CallService.on_event
        feed = CallService.feed
        tee = self

        def parse(data: Any) -> Any:
            tee.journal.entries.append(("e", data))
            return parse_event(data)  # the module's own, as the connection calls it

        def on_event_tee(service: CallService, event: Any) -> None:
            tee.in_event = True
            try:
                on_event(service, event)
            finally:
                tee.in_event = False

        def feed_tee(service: CallService, item: ev.Input) -> None:
            if not tee.in_event:
                tee.journal.entries.append(("i", encode_input(item)))
            feed(service, item)

        with (
            mock.patch.object(ari_connection, "parse_event", parse),  # the connection's global
            mock.patch.object(CallService, "on_event", on_event_tee),
            mock.patch.object(CallService, "feed", feed_tee),
        ):
            yield


_set_event_filter = AriRestClient.set_event_filter


async def _no_filter(self: AriRestClient, app: str, allowed: Any) -> None:
    """Asterisk keeps an app's filter across connections: an empty one lets every event through."""
    await _set_event_filter(self, app, ())


def config_body(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "log_level": "info"}


async def record(
    asterisk: AsteriskSandbox,
    scenarios: list[Scenario],
    rate: float,
    body: dict[str, Any],
    event_filter: bool = True,
) -> tuple[Journal, list[tuple[Scenario, PlacedCall]]]:
    """`event_filter=False`: the daemon does not ask Asterisk to leave out the events it does not
    read (as before the filter), for the replay to compare."""
    sandbox = asterisk.sandbox
    os.environ[PASSWORD_VARIABLE] = sandbox.password
    os.environ[TOKEN_VARIABLE] = "bench-token-0123456789abcdef0123456789"
    with tempfile.TemporaryDirectory(prefix="callkeeper-record-") as tmp:
        workdir = Path(tmp)
        full = daemon_config(sandbox, workdir, free_port(), body)
        journal = Journal(
            header={
                "config": full,
                "machine": machine(),
                "asterisk": asterisk.version,
                "calls": len(scenarios),
                "rate": rate,
                "event_filter": event_filter,
            }
        )
        path = workdir / "callkeeper.yaml"
        path.write_text(yaml.safe_dump(full, sort_keys=False))
        config = load_config(path)
        store = await open_store(config.storage, "bench")
        tee = Tee(journal)
        unfiltered = mock.patch.object(AriRestClient, "set_event_filter", _no_filter)
        with tee.installed(), unfiltered if not event_filter else contextlib.nullcontext():
            daemon = Daemon(config, path, store, "bench")
            running = asyncio.create_task(daemon.run())
            async with asyncio.timeout(20):
                await daemon.connection.wait_ready()
            placed: list[tuple[Scenario, PlacedCall]] = []
            started = time.monotonic()
            for index, scenario in enumerate(scenarios):
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
                call = await place_call(sandbox, scenario.dialled, "+14155550111", scenario.script)
                placed.append((scenario, call))
            pending = {call.inbound for _, call in placed}
            async with asyncio.timeout(120):
                while pending:
                    await asyncio.sleep(0.5)
                    for call_id in list(pending):
                        record = await store.get_call(call_id)
                        if record is not None and record.outcome is not None:
                            pending.discard(call_id)
            # Let the last calls' hangups and destroys arrive, then stop the daemon.
            await asyncio.sleep(3)
            daemon.stopping.set()
            await running
        store = await open_store(config.storage, "bench")
        for _, call in placed:
            record = await store.get_call(call.inbound)
            verdict = verdict_of(record) if record is not None else None
            if verdict is not None:
                journal.verdicts[call.inbound] = verdict
        await store.close()
    return journal, placed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rate", type=float, default=4.0, help="calls placed per second")
    parser.add_argument("--out", type=Path, default=JOURNAL)
    parser.add_argument("--without-event-filter", action="store_true", help="Asterisk sends every event")
    args = parser.parse_args()
    setup_logging("warning", json=True)
    scenarios = pick(EVERY_VERDICT, args.calls)
    with asterisk_sandbox() as asterisk:
        journal, placed = asyncio.run(
            record(
                asterisk,
                scenarios,
                args.rate,
                config_body(every_verdict_config()),
                event_filter=not args.without_event_filter,
            )
        )
    journal.write(args.out)
    wrong = summarize(journal, placed)
    size = args.out.stat().st_size
    print(
        f"\n{journal.events} events, {len(journal.entries) - journal.events} other inputs, "
        f"{len(journal.verdicts)} verdicts -> {args.out} ({size / 1024:.0f} KiB)"
    )
    return 1 if wrong else 0


def summarize(journal: Journal, placed: list[tuple[Scenario, PlacedCall]]) -> int:
    rows: dict[str, list[Any]] = {}
    wrong = 0
    for scenario, call in placed:
        got = journal.verdicts.get(call.inbound)
        row = rows.setdefault(
            scenario.name, [scenario.name, f"{scenario.outcome}/{scenario.reason}", 0, 0, ""]
        )
        row[2] += 1
        if got is None or (got[0], got[1]) != (scenario.outcome, scenario.reason):
            row[3] += 1
            row[4] = "none" if got is None else f"{got[0]}/{got[1]}"
            wrong += 1
    print_table("recorded calls", ["scenario", "expected", "calls", "other", "e.g. got"], list(rows.values()))
    return wrong


if __name__ == "__main__":
    sys.exit(main())
