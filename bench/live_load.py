"""Live load: calls through one line of the real daemon (a process) on the sandbox Asterisk, at
fixed calls-per-second steps, until Asterisk or callkeeper saturates.

    python -m bench.live_load [--steps 1,2,3,4,5] [--step-seconds 20]

The line: a 3 s welcome, then a ring group of Local-channel users (two answer after 2 s, one never
answers, one is busy, one declines), 6 s of ringing, then voicemail. Callers hang up in the
welcome (abandoned), while it rings (missed) or stay 14 s (answered while a user is free, else
voicemail: missed/ring_group_no_answer). Per step: verdicts checked against Asterisk's own view of
each call, CPU of both processes per call (/proc/<pid>/stat, idle rate subtracted), latencies
by Asterisk's clock (an observer app with subscribeAll), daemon memory per live call.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.daemon import RunningDaemon, running_daemon
from tests.integration.sandbox_calls import PlacedCall, place_call

from bench.common import (
    RESULTS,
    AsteriskSandbox,
    asterisk_sandbox,
    cpu_seconds,
    percentile,
    print_table,
    rss_bytes,
    write_results,
)
from bench.observer import Observer
from bench.scenarios import LOAD_MIX, WELCOME_SECONDS, Scenario, load_config, pick

TARGET_CPU_MS_PER_CALL = 5.0
TARGET_CPU_RATIO = 0.05
TARGET_KB_PER_CALL = 20.0
DRAIN_SECONDS = 90.0


@dataclass
class Idle:
    daemon_cpu_per_s: float
    asterisk_cpu_per_s: float
    daemon_rss: int


@dataclass
class Step:
    cps: float
    calls: int = 0
    wrong: list[str] = field(default_factory=list)
    missing: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    daemon_cpu: float = 0.0
    asterisk_cpu: float = 0.0
    first_command_ms: list[float] = field(default_factory=list)
    ring_ms: list[float] = field(default_factory=list)
    ring_from_welcome_end: bool = True
    peak_live_calls: int = 0
    rss_before: int = 0
    rss_at_peak: int = 0
    rss_after: int = 0
    place_failures: int = 0
    off_script: int = 0
    observer_lost: bool = False

    @property
    def daemon_ms_per_call(self) -> float:
        return self.daemon_cpu / self.calls * 1e3 if self.calls else 0.0

    @property
    def asterisk_ms_per_call(self) -> float:
        return self.asterisk_cpu / self.calls * 1e3 if self.calls else 0.0

    @property
    def ratio(self) -> float:
        return self.daemon_cpu / self.asterisk_cpu if self.asterisk_cpu > 0 else 0.0

    @property
    def kb_per_live_call(self) -> float:
        if not self.peak_live_calls:
            return 0.0
        return max(0, self.rss_at_peak - self.rss_before) / self.peak_live_calls / 1024

    def summary(self) -> dict[str, Any]:
        return {
            "cps": self.cps,
            "calls": self.calls,
            "wrong_verdicts": len(self.wrong) - self.missing,
            "missing_verdicts": self.missing,
            "problem_examples": self.wrong[:5],
            "place_failures": self.place_failures,
            "calls_off_their_script": self.off_script,
            "observer_lost_events": self.observer_lost,
            "verdicts": self.verdicts,
            "window_seconds": round(self.seconds, 1),
            "daemon_cpu_ms_per_call": self.daemon_ms_per_call,
            "asterisk_cpu_ms_per_call": self.asterisk_ms_per_call,
            "daemon_to_asterisk_cpu": self.ratio,
            "daemon_cpu_share_of_a_core": self.daemon_cpu / self.seconds if self.seconds else 0.0,
            "asterisk_cpu_share_of_a_core": self.asterisk_cpu / self.seconds if self.seconds else 0.0,
            "stasis_to_first_command_ms": _p(self.first_command_ms),
            "ring_latency_ms": _p(self.ring_ms),
            "ring_latency_from": "end of the welcome playback"
            if self.ring_from_welcome_end
            else f"StasisStart + {WELCOME_SECONDS} s welcome",
            "peak_live_calls": self.peak_live_calls,
            "daemon_rss_before_mib": self.rss_before / 2**20,
            "daemon_rss_at_peak_mib": self.rss_at_peak / 2**20,
            "daemon_rss_after_mib": self.rss_after / 2**20,
            "daemon_kb_per_live_call": self.kb_per_live_call,
        }


def _p(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}


async def measure_idle(daemon_pid: int, asterisk_pid: int, seconds: float) -> Idle:
    d0, a0, t0 = cpu_seconds(daemon_pid), cpu_seconds(asterisk_pid), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    return Idle(
        (cpu_seconds(daemon_pid) - d0) / elapsed,
        (cpu_seconds(asterisk_pid) - a0) / elapsed,
        rss_bytes(daemon_pid),
    )


def _timeline(observer: Observer, call: PlacedCall, record: dict[str, Any]) -> str:
    """The daemon's steps and Asterisk's welcome end and hangup, in s after StasisStart."""
    start = observer.stasis.get(call.inbound, 0.0)
    steps = " ".join(
        f"{s['stage']}@{datetime.fromisoformat(s['at']).timestamp() - start:.3f}" for s in record["steps"]
    )
    ended = observer.playbacks_done.get(call.inbound, [])
    left = observer.hangup_at.get(call.inbound)
    return (
        f"daemon: {steps}; observer: welcome ended "
        f"{f'{ended[0] - start:.3f}' if ended else 'never'} (#{observer.playback_seqs.get(call.inbound)}), "
        f"hung up {f'{left - start:.3f}' if left else 'never'} (#{observer.hangup_seq.get(call.inbound)})"
    )


def expected(observer: Observer, call: PlacedCall) -> tuple[str, str]:
    """The verdict that Asterisk's view of the call implies (events in Asterisk's order)."""
    if observer.hung_up_before_playback_end(call.inbound):
        return "abandoned", "welcome_hangup"
    if observer.talked_to_user(call.inbound):
        return "answered", "answered"
    if observer.voicemail_dialled(call.inbound) or observer.rang_out(call.inbound):
        return "missed", "ring_group_no_answer"
    return "missed", "ring_group_caller_hangup"


async def run_step(
    daemon: RunningDaemon,
    observer: Observer,
    asterisk: AsteriskSandbox,
    idle: Idle,
    *,
    cps: float,
    seconds: float,
    mix: tuple[Scenario, ...] = LOAD_MIX,
) -> Step:
    pid = daemon.process.pid if daemon.process else 0
    scenarios = pick(mix, round(cps * seconds), seed=int(cps * 10))
    step = Step(cps, calls=len(scenarios))
    placed: list[tuple[Scenario, PlacedCall]] = []
    step.rss_before = rss_bytes(pid)
    d0, a0, t0 = cpu_seconds(pid), cpu_seconds(asterisk.pid), time.monotonic()

    async def place(scenario: Scenario) -> None:
        try:
            call = await place_call(daemon.sandbox, scenario.dialled, "+14155550111", scenario.script)
        except (AssertionError, OSError, TimeoutError):
            step.place_failures += 1
            return
        placed.append((scenario, call))

    def live() -> int:
        return sum(
            1 for _, c in placed if c.inbound in observer.created and c.inbound not in observer.destroyed
        )

    async def sample() -> None:
        while True:
            count = live()
            if count >= step.peak_live_calls:
                step.peak_live_calls, step.rss_at_peak = count, rss_bytes(pid)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    tasks = []
    for index, scenario in enumerate(scenarios):
        await asyncio.sleep(max(0.0, t0 + index / cps - time.monotonic()))
        tasks.append(asyncio.create_task(place(scenario)))
    await asyncio.gather(*tasks)
    deadline = time.monotonic() + DRAIN_SECONDS
    # Asterisk's view is polled: the observer's events are read by another task.
    while time.monotonic() < deadline and any(c.inbound not in observer.destroyed for _, c in placed):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    # The last hangups reach the daemon (seconds late when Asterisk is saturated), records are written.
    undecided = [c.inbound for _, c in placed]
    while undecided and time.monotonic() < deadline:
        undecided = [i for i in undecided if not ((await daemon.call(i)) or {}).get("outcome")]
        await asyncio.sleep(0.5)
    sampler.cancel()
    step.seconds = time.monotonic() - t0
    step.daemon_cpu = max(0.0, cpu_seconds(pid) - d0 - idle.daemon_cpu_per_s * step.seconds)
    step.asterisk_cpu = max(0.0, cpu_seconds(asterisk.pid) - a0 - idle.asterisk_cpu_per_s * step.seconds)
    step.rss_after = rss_bytes(pid)
    step.calls = len(placed)
    step.observer_lost = observer.lost

    for scenario, call in placed:
        record = await daemon.call(call.inbound)
        if not record or not record.get("outcome"):
            step.missing += 1
            seen = [
                name
                for name, times in (
                    ("created", observer.created),
                    ("in Stasis", observer.stasis),
                    ("answered", observer.up),
                    ("gone", observer.destroyed),
                )
                if call.inbound in times
            ]
            step.wrong.append(
                f"{call.inbound} {scenario.name}: no verdict ({'record' if record else 'no record'}; "
                f"Asterisk saw it {', '.join(seen) or 'never'})"
            )
            continue
        got = (record["outcome"], record["reason"])
        key = "/".join(got)
        step.verdicts[key] = step.verdicts.get(key, 0) + 1
        want = expected(observer, call)
        if got != want:
            up = any(leg in observer.up for leg in observer.legs_of(call.inbound))
            step.wrong.append(
                f"{call.inbound} {scenario.name}: {got} expected {want} "
                f"(a user's channel answered: {'yes' if up else 'no'}; {_timeline(observer, call, record)})"
            )
        if want[0] != scenario.outcome.split("|")[0] and "|" not in scenario.outcome:
            step.off_script += 1
        inbound = call.inbound
        stasis = observer.stasis.get(inbound)
        answered = observer.up.get(inbound)
        if stasis is not None and answered is not None:
            step.first_command_ms.append((answered - stasis) * 1e3)
        ring = observer.first_ring(inbound)
        if ring is not None and stasis is not None:
            welcome_end = next(iter(observer.playbacks_done.get(inbound, [])), None)
            if welcome_end is None:
                step.ring_from_welcome_end = False
                welcome_end = stasis + WELCOME_SECONDS
            step.ring_ms.append((ring - welcome_end) * 1e3)
    return step


async def run(
    steps: list[float], seconds: float, idle_seconds: float = 10.0, mix: tuple[Scenario, ...] = LOAD_MIX
) -> dict[str, Any]:
    with asterisk_sandbox() as asterisk, tempfile.TemporaryDirectory(prefix="callkeeper-load-") as tmp:
        body = {**load_config(), "log_level": "info"}
        with running_daemon(asterisk.sandbox, Path(tmp), body) as daemon:
            assert daemon.process is not None
            pid = daemon.process.pid
            async with Observer(asterisk.sandbox) as observer:
                idle = await measure_idle(pid, asterisk.pid, idle_seconds)
                print(
                    f"idle: daemon RSS {idle.daemon_rss / 2**20:.1f} MiB, "
                    f"CPU {idle.daemon_cpu_per_s * 1e3:.1f} ms/s; "
                    f"Asterisk CPU {idle.asterisk_cpu_per_s * 1e3:.1f} ms/s"
                )
                done: list[Step] = []
                reason = ""
                for cps in steps:
                    step = await run_step(daemon, observer, asterisk, idle, cps=cps, seconds=seconds, mix=mix)
                    done.append(step)
                    s = step.summary()
                    print(
                        f"  {cps:g} cps: {step.calls} calls, wrong {len(step.wrong) - step.missing}, "
                        f"missing {step.missing}, daemon {step.daemon_ms_per_call:.2f} ms/call, "
                        f"Asterisk {step.asterisk_ms_per_call:.1f} ms/call, "
                        f"first command p50 {s['stasis_to_first_command_ms']['p50']:.1f} ms"
                    )
                    reason = saturated(s)
                    if reason:
                        print(f"  saturated at {cps:g} cps: {reason}")
                        break
                idle_after = await measure_idle(pid, asterisk.pid, min(3.0, idle_seconds))
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(daemon.workdir / "daemon.log", RESULTS / "live_load-daemon.log")
    return report(done, idle, idle_after, version=asterisk.version, seconds=seconds, stop=reason)


def saturated(s: dict[str, Any]) -> str:
    reasons = []
    if s["wrong_verdicts"] or s["missing_verdicts"]:
        reasons.append("wrong or missing verdicts")
    if s["observer_lost_events"]:
        reasons.append("Asterisk dropped the observer's socket")
    if s["place_failures"]:
        reasons.append("originates failed")
    if s["stasis_to_first_command_ms"]["p99"] > 500:
        reasons.append("first ARI command p99 > 500 ms")
    if s["asterisk_cpu_share_of_a_core"] > 1.6:
        reasons.append("Asterisk above 1.6 of the 2 cores")
    if s["daemon_cpu_share_of_a_core"] > 0.8:
        reasons.append("daemon above 0.8 of a core")
    return ", ".join(reasons)


def report(
    steps: list[Step], idle: Idle, idle_after: Idle, *, version: str, seconds: float, stop: str
) -> dict[str, Any]:
    rows = []
    for step in steps:
        s = step.summary()
        rows.append(
            [
                f"{step.cps:g}",
                step.calls,
                f"{len(step.wrong) - step.missing}/{step.missing}",
                step.daemon_ms_per_call,
                step.asterisk_ms_per_call,
                step.ratio,
                f"{s['stasis_to_first_command_ms']['p50']:.0f}/{s['stasis_to_first_command_ms']['p99']:.0f}",
                f"{s['ring_latency_ms']['p50']:.0f}/{s['ring_latency_ms']['p99']:.0f}",
                step.peak_live_calls,
                step.kb_per_live_call,
            ]
        )
    print_table(
        f"live load, one line, {seconds:g} s per step (Asterisk {version})",
        [
            "cps",
            "calls",
            "wrong/missing",
            "daemon ms CPU/call",
            "Asterisk ms CPU/call",
            "daemon/Asterisk",
            "first cmd ms p50/p99",
            "ring ms p50/p99",
            "peak live",
            "daemon KB/live call",
        ],
        rows,
    )
    print(
        f"targets: 0 wrong, daemon <= {TARGET_CPU_MS_PER_CALL} ms CPU/call "
        f"and <= {TARGET_CPU_RATIO}x Asterisk, <= {TARGET_KB_PER_CALL:g} KB per live call"
    )
    print(
        f"daemon idle RSS {idle.daemon_rss / 2**20:.1f} MiB before, "
        f"{idle_after.daemon_rss / 2**20:.1f} MiB after; idle CPU {idle.daemon_cpu_per_s * 1e3:.2f} ms/s"
    )
    return {
        "asterisk": version,
        "step_seconds": seconds,
        "stopped_because": stop or "all steps done",
        "idle": {
            "daemon_rss_mib_before": idle.daemon_rss / 2**20,
            "daemon_rss_mib_after": idle_after.daemon_rss / 2**20,
            "daemon_cpu_ms_per_s": idle.daemon_cpu_per_s * 1e3,
            "asterisk_cpu_ms_per_s": idle.asterisk_cpu_per_s * 1e3,
        },
        "steps": [step.summary() for step in steps],
        "targets": {
            "daemon_cpu_ms_per_call": TARGET_CPU_MS_PER_CALL,
            "daemon_to_asterisk_cpu": TARGET_CPU_RATIO,
            "daemon_kb_per_live_call": TARGET_KB_PER_CALL,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="1,2,3,4,5", help="calls per second, comma-separated")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--name", default="live_load", help="bench/results/NAME.json")
    args = parser.parse_args()
    steps = [float(s) for s in args.steps.split(",")]
    result = asyncio.run(run(steps, args.step_seconds))
    write_results(args.name, result)
    return 1 if any(s["wrong_verdicts"] or s["missing_verdicts"] for s in result["steps"]) else 0


if __name__ == "__main__":
    sys.exit(main())
