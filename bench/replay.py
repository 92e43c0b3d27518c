"""Engine replay: the recorded journal of real calls (bench/data/journal.jsonl.gz, made by
bench/record.py) through the daemon's own event path, against the fake ARI in a process of its own.

    python -m bench.replay [--passes 5] [--profile] [--journal PATH]

Per event: `orjson.loads` of the websocket message -> `parse_event` -> `CallService.on_event`
(translate -> `Engine.handle` -> classifier -> dispatch to the call's worker, timers, records,
log lines rendered as in production, to /dev/null). The per-call workers run their actions
through the real `AriRestClient` and `AriConnection` (REST over the event websocket, or HTTP) against
`tests.fake_ari.FakeAri` (`ServedInProcess`: its own process, like Asterisk, so it takes neither the
daemon's core nor the GIL), which answers as Asterisk would, at once; the records go through the real
`RecordWriter` to memory. Timers never fire by themselves: they fire where the
journal says they fired live, like every other input that did not come from an event.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from tests.fake_ari import ServedInProcess

from bench.common import RESULTS, percentile, print_table, production_logs_to_devnull, write_results
from bench.journal import Journal, Verdict, decode_input, verdict_of
from callkeeper.ari.connection import AriConnection
from callkeeper.ari.events import MalformedEvent, parse_event
from callkeeper.ari.rest import AriRestClient
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.config.loader import load_config_text
from callkeeper.config.model import AsteriskConfig, Config
from callkeeper.records import CallRecord
from callkeeper.run import event_loop
from callkeeper.service.call_runner import CallService
from callkeeper.service.record_writer import RecordSink, RecordWriter

DEFAULT_JOURNAL = Path(__file__).resolve().parent / "data" / "journal.jsonl.gz"
UNFILTERED_JOURNAL = DEFAULT_JOURNAL.with_name("journal-unfiltered.jsonl.gz")
TARGET_EVENTS_PER_SECOND = 100_000
YIELD_EVERY = 8  # events read from one websocket frame batch before the workers get the loop


async def connected(rest: AriRestClient, config: AsteriskConfig) -> tuple[AriConnection, asyncio.Task[None]]:
    """The daemon's connection for `rest`, ready and taking REST requests over its websocket."""
    connection = AriConnection(config, on_event=lambda event: None, rest=rest)
    running = asyncio.create_task(connection.run(), name="ari-connection")
    async with asyncio.timeout(5):
        await connection.wait_ready()
    for _ in range(5000):  # the answer to the lane's probe is a loop turn or two away
        if connection.requests.usable:
            return connection, running
        await asyncio.sleep(0.001)
    raise RuntimeError("the fake ARI never answered the event socket's probe")


class MemorySink:
    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}

    async def save_call(self, record: CallRecord) -> None:
        self.records[record.id] = record


class ReplayService(CallService):
    """Timers are fired by the journal, where they fired live; a timer that comes due on its own
    during a replay is counted, not fired."""

    stray_timers = 0

    def _fire(self, call_id: str, name: Timer, token: int) -> None:
        self.timers.pop((call_id, name), None)
        self.stray_timers += 1


@dataclass
class Pass:
    events: int = 0
    inputs: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    event_ns: list[int] = field(default_factory=list)
    parse_ns: list[int] = field(default_factory=list)
    handle_ns: list[int] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    requests: int = 0
    records_written: int = 0
    records_saved: int = 0
    stray_timers: int = 0
    drain: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall if self.wall else 0.0

    @property
    def path_events_per_second(self) -> float:
        """Counting only the time spent on the event path (decode, parse, handle)."""
        spent = sum(self.event_ns)
        return self.events / (spent / 1e9) if spent else 0.0


def replay_config(journal: Journal) -> Config:
    recorded = journal.header["config"]
    body = {
        **{k: v for k, v in recorded.items() if k not in ("storage", "http")},
        "asterisk": {**recorded["asterisk"], "url": "http://127.0.0.1:1", "password": "unused"},
        "http": {"token": "replay" * 6},  # required by the config, never served here
        "log_level": "info",
    }
    return load_config_text(json.dumps(body), "journal header", {})


Entry = tuple[str, Any]


def prepared(journal: Journal, as_text: bool) -> list[Entry]:
    """Events as decoded JSON (what `parse_event` takes) or as the text of their websocket message;
    other inputs decoded."""
    out: list[Entry] = []
    for kind, payload in journal.entries:
        if kind == "e":
            out.append(("e", json.dumps(payload, separators=(",", ":")) if as_text else payload))
        else:
            out.append(("i", decode_input(payload)))
    return out


async def run_pass(
    config: Config, entries: list[Entry], from_text: bool, sink: RecordSink | None = None
) -> Pass:
    """One replay of the journal; `sink` stores the records (default: memory, at once). The CPU
    time is the daemon's process's: the fake ARI runs in its own."""
    with ServedInProcess() as served:
        return await replay_through(
            config=config,
            asterisk=replace(config.asterisk, url=served.url),
            fake=served,
            entries=entries,
            from_text=from_text,
            sink=sink,
        )


class InStasisAtOnce(dict[str, asyncio.Event]):
    """A channel the fake creates is in Stasis at once: the journal's StasisStart of that channel
    may have been replayed before the call's worker got to create it."""

    def __setitem__(self, channel_id: str, entered: asyncio.Event) -> None:
        entered.set()
        super().__setitem__(channel_id, entered)


async def replay_through(
    *,
    config: Config,
    asterisk: AsteriskConfig,
    fake: ServedInProcess,
    entries: list[Entry],
    from_text: bool,
    sink: RecordSink | None,
) -> Pass:
    result = Pass()
    rest = AriRestClient(asterisk)
    connection, running = await connected(rest, asterisk)
    handshake = fake.requests()
    memory = MemorySink()
    writer = RecordWriter(sink or memory)
    writer.start()
    saved = Counter[str]()
    service = ReplayService(config, rest, writer, "bench")
    service.entering = InStasisAtOnce()
    original_save = writer.save

    def counting_save(record: CallRecord) -> None:
        saved[record.id] += 1
        original_save(record)

    writer.save = counting_save  # type: ignore[method-assign]
    clock = time.perf_counter_ns
    decode = orjson.loads if from_text else _as_is
    event_ns, parse_ns, handle_ns = result.event_ns, result.parse_ns, result.handle_ns
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for index, (kind, payload) in enumerate(entries):
        if kind == "e":
            t0 = clock()
            try:
                event = parse_event(decode(payload))
            except MalformedEvent:
                continue
            t1 = clock()
            service.on_event(event)
            t2 = clock()
            event_ns.append(t2 - t0)
            parse_ns.append(t1 - t0)
            handle_ns.append(t2 - t1)
            result.events += 1
        else:
            if isinstance(payload, ev.TimerFired):
                service._cancel_timer(payload.call_id, payload.name)
            service.feed(payload)
            result.inputs += 1
        if index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    workers = [w.task for w in service.workers.values()]
    if workers:
        await asyncio.wait(workers, timeout=10)
    events_done = time.perf_counter()
    await writer.flush(120)
    result.wall = time.perf_counter() - wall0
    result.cpu = time.process_time() - cpu0
    result.drain = result.wall - (events_done - wall0)
    for handle in service.timers.values():
        handle.cancel()
    for worker in service.workers.values():
        worker.task.cancel()
    await writer.close()
    await connection.close()
    await running
    await rest.close()
    result.verdicts = {k: v for k, r in memory.records.items() if (v := verdict_of(r)) is not None}
    result.requests = fake.requests() - handshake
    result.records_written = writer.written
    result.records_saved = sum(saved.values())
    result.stray_timers = service.stray_timers
    return result


def _as_is(data: Any) -> Any:
    return data


def compare(live: dict[str, Verdict], replayed: dict[str, Verdict]) -> list[str]:
    problems = []
    for call_id, verdict in live.items():
        got = replayed.get(call_id)
        if got != verdict:
            problems.append(f"{call_id}: live {verdict}, replay {got}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--journal",
        type=Path,
        action="append",
        help=f"default: {DEFAULT_JOURNAL.name}, and {UNFILTERED_JOURNAL.name} to compare",
    )
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="one more pass under cProfile, top functions")
    parser.add_argument("--name", default="replay", help="bench/results/NAME.json")
    args = parser.parse_args()
    journals = args.journal or [p for p in (DEFAULT_JOURNAL, UNFILTERED_JOURNAL) if p.exists()]
    production_logs_to_devnull()
    with asyncio.Runner(loop_factory=event_loop) as runner:  # the daemon's loop
        results, problems = runner.run(replay_all(journals, args.passes, args.profile))
    write_results(args.name, {"journals": results})
    return 1 if problems else 0


async def replay_all(
    journals: list[Path], passes: int, profile: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each journal in turn; with more than one, their cost per call side by side."""
    results, problems = [], []
    for index, path in enumerate(journals):
        summary, found = await replay(path, passes, profile and index == 0)
        results.append(summary)
        problems += found
    if len(results) > 1:
        print_table(
            "per call, the same run",
            ["journal", "calls", "events/call", "events/s", "us CPU/call", "us CPU/call with orjson.loads"],
            [
                [
                    r["journal"],
                    r["calls"],
                    r["events"] / r["calls"],
                    r["events_per_second_median"],
                    r["cpu_us_per_call"],
                    r["cpu_us_per_call_with_json_decode"],
                ]
                for r in results
            ],
        )
    return results, problems


def _stats(values: list[int]) -> dict[str, float]:
    return {
        "p50_us": percentile(values, 50) / 1e3,
        "p99_us": percentile(values, 99) / 1e3,
        "mean_us": sum(values) / len(values) / 1e3 if values else 0.0,
    }


async def replay(path: Path, passes: int, profile: bool = False) -> tuple[dict[str, Any], list[str]]:
    journal = Journal.read(path)
    config = replay_config(journal)
    decoded, texts = prepared(journal, as_text=False), prepared(journal, as_text=True)
    runs, text_runs = [], []
    for _ in range(passes):
        runs.append(await run_pass(config, decoded, from_text=False))
        text_runs.append(await run_pass(config, texts, from_text=True))
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await run_pass(config, texts, from_text=True)
        profiler.disable()
    runs.sort(key=lambda r: r.events_per_second)
    text_runs.sort(key=lambda r: r.events_per_second)
    median, best, text = runs[len(runs) // 2], runs[-1], text_runs[len(text_runs) // 2]
    problems = [p for run in runs + text_runs for p in compare(journal.verdicts, run.verdicts)]
    stray = sum(r.stray_timers for r in runs + text_runs)
    if stray:
        problems.append(f"{stray} timers came due on their own during the replay")
    outcomes = Counter(f"{o}/{r}" for o, r, _ in journal.verdicts.values())
    summary: dict[str, Any] = {
        "journal": str(path.name),
        "journal_header": {k: v for k, v in journal.header.items() if k != "config"},
        "calls": len(journal.verdicts),
        "events": median.events,
        "other_inputs": median.inputs,
        "passes": passes,
        "events_per_second_median": median.events_per_second,
        "events_per_second_best": best.events_per_second,
        "path_events_per_second_median": median.path_events_per_second,
        "events_per_second_with_json_decode_median": text.events_per_second,
        "cpu_share_of_wall": median.cpu / median.wall if median.wall else 0.0,
        "cpu_us_per_call": median.cpu / len(journal.verdicts) * 1e6,
        "cpu_us_per_call_with_json_decode": text.cpu / len(journal.verdicts) * 1e6,
        "event_filter": journal.header.get("event_filter", True),
        "per_event": _stats(median.event_ns),
        "parse": _stats(median.parse_ns),
        "handle": _stats(median.handle_ns),
        "per_event_with_json_decode": _stats(text.event_ns),
        "json_decode_and_parse": _stats(text.parse_ns),
        "ari_requests": median.requests,
        "records_saved": median.records_saved,
        "records_written": median.records_written,
        "verdicts": dict(sorted(outcomes.items())),
        "verdicts_equal_live": not problems,
        "problems": problems[:20],
        "target_events_per_second": TARGET_EVENTS_PER_SECOND,
    }
    p50p99 = "{0[p50_us]:.2f} / {0[p99_us]:.2f}".format
    print_table(
        f"engine replay of {path.name}: {len(journal.verdicts)} calls, {median.events:,} events, "
        f"{median.inputs} timer/other inputs, {passes} passes of each",
        ["figure", "value", "target"],
        [
            [
                "events/s: parse_event -> on_event, workers, records (median)",
                median.events_per_second,
                f">= {TARGET_EVENTS_PER_SECOND:,}",
            ],
            ["events/s: the same, best pass", best.events_per_second, ""],
            [
                "events/s on the event path alone (parse + on_event, median pass)",
                median.path_events_per_second,
                "",
            ],
            ["events/s: with orjson.loads of the websocket text (median)", text.events_per_second, ""],
            ["us/event p50 / p99: parse + handle", p50p99(summary["per_event"]), ""],
            ["  parse_event p50 / p99 us", p50p99(summary["parse"]), ""],
            ["  on_event (translate, engine, dispatch) p50 / p99 us", p50p99(summary["handle"]), ""],
            ["us/event p50 / p99 with orjson.loads", p50p99(summary["per_event_with_json_decode"]), ""],
            ["  orjson.loads + parse_event p50 / p99 us", p50p99(summary["json_decode_and_parse"]), ""],
            [
                "us CPU per call (median pass; with orjson.loads)",
                f"{summary['cpu_us_per_call']:.0f}; {summary['cpu_us_per_call_with_json_decode']:.0f}",
                "",
            ],
            ["CPU / wall (one core)", summary["cpu_share_of_wall"], ""],
            [
                "ARI requests (to the fake ARI) / records saved / written",
                f"{median.requests} / {median.records_saved} / {median.records_written}",
                "",
            ],
            ["verdicts equal to live", "yes" if not problems else f"NO ({len(problems)})", "yes"],
        ],
    )
    print_table("verdicts", ["outcome/reason", "calls"], sorted(outcomes.items()))
    for problem in problems[:10]:
        print("  ", problem)
    if profile:
        RESULTS.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(RESULTS / "replay.prof")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())
    return summary, problems


if __name__ == "__main__":
    sys.exit(main())
