"""The benchmarks of bench/ that need the sandbox Asterisk stay runnable: a few calls each."""

from __future__ import annotations

from pathlib import Path

from bench import ari_transport, live_load, native, record, sip_load
from bench.common import asterisk_sandbox
from bench.replay import replay
from bench.scenarios import EVERY_VERDICT, LOAD_MIX, every_verdict_config

from callkeeper.service.translate import WANTED_EVENTS
from tests.conftest import Sandbox

QUICK = ("welcome_hangup", "dead_end", "unknown_number", "answered")


async def test_recorded_calls_replay_to_their_live_verdicts(sandbox: Sandbox, tmp_path: Path) -> None:
    scenarios = [s for s in EVERY_VERDICT if s.name in QUICK]
    with asterisk_sandbox() as asterisk:
        journal, placed = await record.record(
            asterisk, scenarios, rate=4, body=record.config_body(every_verdict_config())
        )
    assert {journal.verdicts[call.inbound][:2] for _, call in placed} == {
        (s.outcome, s.reason) for s in scenarios
    }
    # The daemon asked Asterisk for the events it reads, and got only those.
    assert {payload["type"] for kind, payload in journal.entries if kind == "e"} <= set(WANTED_EVENTS)
    path = tmp_path / "journal.jsonl.gz"
    journal.write(path)
    summary, problems = await replay(path, passes=1)
    assert problems == []
    assert summary["calls"] == len(scenarios)


async def test_live_load_step(sandbox: Sandbox) -> None:
    quick = tuple(s for s in LOAD_MIX if s.name in ("abandoned", "missed"))
    result = await live_load.run([2], seconds=1.5, idle_seconds=0.5, mix=quick)
    (step,) = result["steps"]
    assert step["calls"] == 3
    assert step["wrong_verdicts"] == 0 and step["missing_verdicts"] == 0, step["problem_examples"]
    assert step["stasis_to_first_command_ms"]["n"] == 3
    assert step["asterisk_cpu_ms_per_call"] > 0


async def test_native_against_callkeeper(sandbox: Sandbox) -> None:
    result = await native.run(calls=1, rounds=1, rate=1, idle_seconds=0.5)
    for system in ("native", "callkeeper"):
        assert result["systems"][system]["rang"] == 1, result
    assert result["systems"]["callkeeper"]["wrong_verdicts"] == []


async def test_sip_load_beside_dial(sandbox: Sandbox) -> None:
    result = await sip_load.run(calls=2, rounds=1, rate=2, hold_calls=3, idle_seconds=0.5)
    for system in ("native", "callkeeper"):
        figures = result["systems"][system]
        assert figures["failed"] == [], figures
        assert figures["invite_to_phone_invite_ms"]["n"] == 2, figures
    assert result["memory"]["peak_live_calls"] == 3 and result["memory"]["failed"] == [], result["memory"]


async def test_ari_transport(sandbox: Sandbox) -> None:
    result = await ari_transport.run(requests=40, rounds=1, concurrency=4)
    assert set(result["best"]) == {
        f"{kind} x{n} {transport}"
        for kind in ("info", "channel")
        for n in (1, 4)
        for transport in ("http", "websocket")
    }
    assert all(figures["requests"] == 40 for figures in result["best"].values())
