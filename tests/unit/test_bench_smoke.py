"""The benchmarks of bench/ stay runnable: a short run of each that needs no Asterisk."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.common import percentile
from bench.inbox import run as inbox_run
from bench.journal import Journal, decode_input, encode_input
from bench.replay import DEFAULT_JOURNAL, replay
from bench.store_bench import run as store_run

from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.service.translate import WANTED_EVENTS


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(range(1, 101)), 99) == 99


def test_inputs_survive_the_journal() -> None:
    item = ev.TimerFired("c1", Timer.RING, 7, datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    assert decode_input(encode_input(item)) == item


def test_the_committed_journal_holds_what_the_daemon_asks_asterisk_for() -> None:
    journal = Journal.read(DEFAULT_JOURNAL)
    assert len(journal.verdicts) >= 200
    assert {payload["type"] for kind, payload in journal.entries if kind == "e"} <= set(WANTED_EVENTS)
    assert {reason for _, reason, _ in journal.verdicts.values()} >= {
        "answered",
        "welcome_hangup",
        "ivr_hangup",
        "ring_group_no_answer",
        "voicemail",
        "dead_end",
    }


async def test_replay_gives_the_live_verdicts() -> None:
    summary, problems = await replay(DEFAULT_JOURNAL, passes=1)
    # A change of the call logic that changes verdicts on purpose needs a new journal:
    # `python -m bench.record` (bench/README.md).
    assert problems == []
    assert summary["verdicts_equal_live"]
    assert summary["events"] > 1000
    assert summary["events_per_second_median"] > 0


async def test_store_bench_on_sqlite() -> None:
    result = await store_run(count=60, outbox=20, postgres=False, slow_seconds=0.002)
    sqlite = result["backends"]["sqlite"]
    assert sqlite["records_per_s"] > 0 and sqlite["outbox_enqueues_per_s"] > 0
    slow = result["event_path"]["sqlite + 2 ms per write"]
    assert slow["records_written"] < slow["records_saved"]  # a slow store gets coalesced writes


async def test_inbox_bench_on_sqlite() -> None:
    result = await inbox_run(items=40, runs=1, postgres=False)
    sqlite = result["backends"]["sqlite"]
    assert sqlite["items"] == 40 and sqlite["list_all_ms"]["median_ms"] > 0
