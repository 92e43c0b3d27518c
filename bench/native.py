"""Against native dialplan: the same ring-group-then-voicemail flow as plain dialplan
(`[bench-native-ringgroup]`: Dial(Local/ringa&Local/ringb,2) then VoiceMail()) and through
callkeeper, on the same Asterisk in the same run, in alternating batches.

    python -m bench.native [--calls 10] [--rounds 2] [--rate 1]

Time to ring: from the inbound channel's creation to the first user's channel ringing, both by
Asterisk's clock (an observer app with subscribeAll). CPU per call: Asterisk's, plus the daemon's
for callkeeper, over each batch (/proc/<pid>/stat, idle rate subtracted). Every caller stays 5 s:
2 s of ringing, then the voicemail greeting (callkeeper answers the caller at once, the dialplan
only when VoiceMail() does, so the native caller's script starts 2 s later).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.daemon import RunningDaemon, running_daemon
from tests.integration.sandbox_calls import ari

from bench.common import (
    AsteriskSandbox,
    asterisk_sandbox,
    batch_parser,
    cpu_seconds,
    percentile,
    print_table,
    write_results,
)
from bench.live_load import Idle, measure_idle
from bench.observer import Observer
from bench.scenarios import MAILBOX

NUMBER = "+15550003001"
RING_SECONDS = 2
MEMBERS = ("ringa", "ringb")
TARGET_ADDED_MS = 5.0
DRAIN_SECONDS = 30.0


def callkeeper_config() -> dict[str, Any]:
    return {
        "users": {name: {"endpoint": f"Local/{name}@user-noanswer"} for name in MEMBERS},
        "ring_groups": {"pair": {"members": list(MEMBERS), "ring_seconds": RING_SECONDS}},
        "lines": {
            "main": {"numbers": [NUMBER], "route": "ring_group:pair", "missed_calls": {"mailbox": MAILBOX}}
        },
        "log_level": "info",
    }


@dataclass
class Batch:
    system: str
    calls: list[str] = field(default_factory=list)
    seconds: float = 0.0
    asterisk_cpu: float = 0.0
    daemon_cpu: float = 0.0
    ring_ms: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)


async def originate(asterisk: AsteriskSandbox, system: str) -> str:
    """One caller; returns the id of the inbound channel (the `;2` half)."""
    inbound = f"inbound-{uuid.uuid4().hex[:12]}"
    native = system == "native"
    variables = {"CALLER_SCRIPT": "wait:3" if native else "wait:5"}
    if native:
        variables["__RINGGROUP_SECONDS"] = str(RING_SECONDS)
        variables["__RINGGROUP_MEMBERS"] = "&".join(f"Local/{m}@user-noanswer" for m in MEMBERS)
    status, body = await ari(
        asterisk.sandbox,
        "POST",
        "/channels",
        json={
            "endpoint": f"Local/{NUMBER}@{'bench-native-ringgroup' if native else 'callkeeper-inbound'}",
            "context": "test-caller",
            "extension": "s",
            "priority": 1,
            "callerId": "+14155550111",
            "timeout": 30,
            "channelId": f"caller-{uuid.uuid4().hex[:12]}",
            "otherChannelId": inbound,
            "variables": variables,
        },
    )
    if status != 200:
        raise AssertionError(f"originate failed: HTTP {status} {body}")
    return inbound


async def run_batch(
    system: str,
    *,
    count: int,
    rate: float,
    asterisk: AsteriskSandbox,
    daemon: RunningDaemon,
    observer: Observer,
    idle: Idle,
) -> Batch:
    batch = Batch(system)
    pid = daemon.process.pid if daemon.process else 0
    d0, a0, t0 = cpu_seconds(pid), cpu_seconds(asterisk.pid), time.monotonic()
    for index in range(count):
        await asyncio.sleep(max(0.0, t0 + index / rate - time.monotonic()))
        batch.calls.append(await originate(asterisk, system))
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline and any(c not in observer.destroyed for c in batch.calls):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    batch.seconds = time.monotonic() - t0
    batch.asterisk_cpu = max(0.0, cpu_seconds(asterisk.pid) - a0 - idle.asterisk_cpu_per_s * batch.seconds)
    batch.daemon_cpu = max(0.0, cpu_seconds(pid) - d0 - idle.daemon_cpu_per_s * batch.seconds)
    for inbound in batch.calls:
        created, ring = observer.created.get(inbound), observer.first_ring(inbound)
        if created is not None and ring is not None:
            batch.ring_ms.append((ring - created) * 1e3)
            note_stages(batch, observer, inbound, created, ring)
        if system == "callkeeper":
            record = await daemon.call(inbound)
            got = (record or {}).get("outcome"), (record or {}).get("reason")
            if got != ("missed", "ring_group_no_answer"):
                batch.wrong.append(f"{inbound}: {got}")
    return batch


def note_stages(batch: Batch, observer: Observer, inbound: str, created: float, ring: float) -> None:
    """Where the time to ring goes, by Asterisk's clock: into Stasis, to the first user's channel
    (callkeeper's first ARI command: the caller is not answered while users ring), to its ringing."""
    stasis = observer.stasis.get(inbound)
    legs = [observer.created[c] for c in observer.legs_of(inbound) if c in observer.created]
    if stasis is None or not legs:
        return
    first_leg = min(legs)
    for name, start, end in (
        ("created -> StasisStart", created, stasis),
        ("StasisStart -> first user channel created", stasis, first_leg),
        ("user channel created -> ringing", first_leg, ring),
    ):
        batch.stages_ms.setdefault(name, []).append((end - start) * 1e3)


async def run(calls: int, rounds: int, rate: float, idle_seconds: float = 10.0) -> dict[str, Any]:
    with (
        asterisk_sandbox() as asterisk,
        tempfile.TemporaryDirectory(prefix="callkeeper-native-") as tmp,
        running_daemon(asterisk.sandbox, Path(tmp), callkeeper_config()) as daemon,
    ):
        assert daemon.process is not None
        async with Observer(asterisk.sandbox) as observer:
            idle = await measure_idle(daemon.process.pid, asterisk.pid, idle_seconds)
            batches: list[Batch] = []
            for _ in range(rounds):
                for system in ("native", "callkeeper"):
                    batch = await run_batch(
                        system,
                        count=calls,
                        rate=rate,
                        asterisk=asterisk,
                        daemon=daemon,
                        observer=observer,
                        idle=idle,
                    )
                    batches.append(batch)
    return report(batches, asterisk.version, rate)


def report(batches: list[Batch], version: str, rate: float) -> dict[str, Any]:
    systems: dict[str, dict[str, Any]] = {}
    for system in ("native", "callkeeper"):
        mine = [b for b in batches if b.system == system]
        calls = sum(len(b.calls) for b in mine)
        ring = [ms for b in mine for ms in b.ring_ms]
        asterisk_cpu = sum(b.asterisk_cpu for b in mine)
        daemon_cpu = sum(b.daemon_cpu for b in mine)
        systems[system] = {
            "calls": calls,
            "rang": len(ring),
            "time_to_ring_ms": {
                "p50": percentile(ring, 50),
                "p90": percentile(ring, 90),
                "p99": percentile(ring, 99),
            },
            "asterisk_cpu_ms_per_call": asterisk_cpu / calls * 1e3 if calls else 0.0,
            "daemon_cpu_ms_per_call": daemon_cpu / calls * 1e3 if calls else 0.0,
            "total_cpu_ms_per_call": (asterisk_cpu + daemon_cpu) / calls * 1e3 if calls else 0.0,
            "wrong_verdicts": [w for b in mine for w in b.wrong],
            "time_to_ring_stages_p50_ms": {
                name: percentile([ms for b in mine for ms in b.stages_ms.get(name, [])], 50)
                for name in {n for b in mine for n in b.stages_ms}
            },
        }
    native, ours = systems["native"], systems["callkeeper"]
    added = ours["time_to_ring_ms"]["p50"] - native["time_to_ring_ms"]["p50"]
    cpu_ratio = (
        ours["total_cpu_ms_per_call"] / native["total_cpu_ms_per_call"]
        if native["total_cpu_ms_per_call"]
        else 0.0
    )
    rows = [
        [
            name,
            s["calls"],
            f"{s['time_to_ring_ms']['p50']:.0f} / {s['time_to_ring_ms']['p99']:.0f}",
            s["asterisk_cpu_ms_per_call"],
            s["daemon_cpu_ms_per_call"],
            s["total_cpu_ms_per_call"],
            len(s["wrong_verdicts"]),
        ]
        for name, s in systems.items()
    ]
    print_table(
        f"ring group of 2 ({RING_SECONDS} s) then voicemail, {rate:g} call/s, "
        f"alternating batches (Asterisk {version})",
        [
            "flow",
            "calls",
            "time to ring ms p50/p99",
            "Asterisk ms CPU/call",
            "daemon ms CPU/call",
            "total ms CPU/call",
            "wrong",
        ],
        rows,
    )
    for name, ms in ours["time_to_ring_stages_p50_ms"].items():
        print(f"  callkeeper p50 {name}: {ms:.1f} ms")
    print(
        f"callkeeper adds {added:.1f} ms to the p50 time to ring (target <= {TARGET_ADDED_MS:g} ms); "
        f"total CPU per call {cpu_ratio:.2f}x native"
    )
    return {
        "asterisk": version,
        "rate": rate,
        "systems": systems,
        "added_time_to_ring_p50_ms": added,
        "total_cpu_vs_native": cpu_ratio,
        "target_added_ms": TARGET_ADDED_MS,
    }


def main() -> int:
    args = batch_parser(__doc__, calls=10, rounds=2, rate=1.0, name="native").parse_args()
    result = asyncio.run(run(args.calls, args.rounds, args.rate))
    write_results(args.name, result)
    return 1 if result["systems"]["callkeeper"]["wrong_verdicts"] else 0


if __name__ == "__main__":
    sys.exit(main())
