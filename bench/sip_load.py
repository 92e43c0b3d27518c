"""SIP load through callkeeper beside Asterisk's own Dial(), on the same Asterisk, the same phones.

    python -m bench.sip_load [--calls 60] [--rate 2] [--rounds 1] [--hold 250]

The trunk's callers (SIPp, tests/sip/harness.py) call at `rate` per second into a ring group of six
phones (SIPp servers registered as PJSIP/phone1..phone6, answering after 0.3, 0.45, ... 1.05 s);
each caller talks 1 s and hangs up. Batches alternate: `native` calls come in on the trunk
`test-native-trunk`, whose dialplan does `Dial(PJSIP/phone1&...&PJSIP/phone6,30)`; `callkeeper`
calls come in on `test-trunk` to a line whose ring group has the same six phones (callkeeper rings
those not busy on one of its calls; Dial() rings all six).

Per call, from the SIP messages on the wire (SIPp's clock, one machine): caller's INVITE -> the
first phone's INVITE, caller's INVITE -> the caller's 180, the answering phone's 200 -> the
caller's 200. CPU per call: Asterisk's and the daemon's over each batch (/proc, idle rate
subtracted); in the native batches the daemon only watches the phones' device states, which is what
the PBX's other calls cost it. A phone's INVITE belongs to the call whose caller it names (From or
P-Asserted-Identity); one that names none goes to the latest caller's INVITE before it.

Then (`--hold N`, 0 to leave it out) N callers call a second line, whose ring group rings the six
phones even when busy, and stay on: the daemon's RSS with all N calls in progress, less its RSS
before them, over N is its memory per live call.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from tests.integration.daemon import TOKEN, RunningDaemon, running_daemon
from tests.sip.harness import NATIVE_TRUNK_HOST, TRUNK_HOST, Caller, Phone, SipMessage, callers, phones

from bench.common import (
    AsteriskSandbox,
    asterisk_sandbox,
    batch_parser,
    cpu_seconds,
    percentile,
    print_table,
    rss_bytes,
    write_results,
)
from bench.live_load import Idle, measure_idle

NUMBER = "+15550004001"
HOLD_NUMBER = "+15550004002"
HOLD_RATE = 10.0
PHONES = {f"phone{n}": 150 + 150 * n for n in range(1, 7)}
TALK_MS = 1000
SYSTEMS = ("native", "callkeeper")
FIGURES = ("invite_to_phone_invite_ms", "invite_to_180_ms", "phone_200_to_caller_200_ms")


def callkeeper_config() -> dict[str, Any]:
    return {
        "users": {name: {"endpoint": f"PJSIP/{name}"} for name in PHONES},
        "ring_groups": {
            "phones": {"members": list(PHONES), "ring_seconds": 20},
            "all_phones": {"members": list(PHONES), "ring_seconds": 20, "ring_when_busy": True},
        },
        "lines": {
            "main": {
                "numbers": [NUMBER],
                "route": "ring_group:phones",
                "missed_calls": {"mailbox": "1000@default"},
            },
            "hold": {
                "numbers": [HOLD_NUMBER],
                "route": "ring_group:all_phones",
                "missed_calls": {"mailbox": "1000@default"},
            },
        },
        "log_level": "info",
    }


@dataclass
class Batch:
    system: str
    calls: int
    seconds: float = 0.0
    asterisk_cpu: float = 0.0
    daemon_cpu: float = 0.0
    figures: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in FIGURES})
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PhoneCall:
    """One INVITE a phone received, and its 200 OK if the phone answered it."""

    invite: SipMessage
    answer: SipMessage | None


def phone_calls(ringing: Sequence[Phone], since: float) -> list[PhoneCall]:
    found: list[PhoneCall] = []
    for phone in ringing:
        for dialog in phone.sipp.dialogs().values():
            invite = next((m for m in dialog if not m.sent and m.method == "INVITE"), None)
            if invite is None or invite.at < since:
                continue
            answer = next(
                (m for m in dialog if m.sent and m.status == 200 and m.cseq_method == "INVITE"), None
            )
            found.append(PhoneCall(invite, answer))
    return sorted(found, key=lambda call: call.invite.at)


def measure(batch: Batch, caller_dialogs: dict[str, list[SipMessage]], rung: list[PhoneCall]) -> None:
    """Fills the batch's per-call figures from the callers' dialogs and the phones' calls."""
    invites = {
        number: next(m for m in dialog if m.sent and m.method == "INVITE")
        for number, dialog in caller_dialogs.items()
    }
    order = sorted(invites, key=lambda number: invites[number].at)
    times = [invites[number].at for number in order]
    by_caller: dict[str, list[PhoneCall]] = {number: [] for number in order}
    for call in rung:
        named = {call.invite.identity("From")[1], call.invite.identity("P-Asserted-Identity")[1]} & set(
            by_caller
        )
        if named:
            by_caller[named.pop()].append(call)
        elif (index := bisect.bisect_right(times, call.invite.at)) > 0:
            by_caller[order[index - 1]].append(call)
    for number in order:
        dialog = caller_dialogs[number]
        invite = invites[number]
        ringing = next((m for m in dialog if not m.sent and m.status == 180), None)
        answer = next(
            (m for m in dialog if not m.sent and m.status == 200 and m.cseq_method == "INVITE"), None
        )
        rang = by_caller[number]
        answers = [c.answer.at for c in rang if c.answer is not None]
        if ringing is None or answer is None or not rang or not answers:
            batch.failed.append(f"{number}: {[m.start_line for m in dialog]}")
            continue
        batch.figures["invite_to_phone_invite_ms"].append((rang[0].invite.at - invite.at) * 1e3)
        batch.figures["invite_to_180_ms"].append((ringing.at - invite.at) * 1e3)
        batch.figures["phone_200_to_caller_200_ms"].append((answer.at - min(answers)) * 1e3)


async def run_batch(
    system: str,
    round_number: int,
    *,
    count: int,
    rate: float,
    asterisk: AsteriskSandbox,
    daemon: RunningDaemon,
    ringing: Sequence[Phone],
    idle: Idle,
    workdir: Path,
) -> Batch:
    batch = Batch(system, count)
    native = system == "native"
    dial = "&".join(phone.dial_string for phone in ringing) if native else "none"
    numbers = [f"+1415{round_number:02d}{'1' if native else '2'}{index:04d}" for index in range(count)]
    pid = daemon.process.pid if daemon.process else 0
    d0, a0, t0, since = cpu_seconds(pid), cpu_seconds(asterisk.pid), time.monotonic(), time.time()
    async with callers(
        (asterisk.sandbox.sip_host, asterisk.sandbox.sip_port),
        [Caller(NUMBER, number, dial=dial) for number in numbers],
        workdir,
        name=f"{system}-{round_number}",
        trunk_host=NATIVE_TRUNK_HOST if native else TRUNK_HOST,
        rate=rate,
        talk_ms=TALK_MS,
    ) as trunk:
        status = await trunk.wait(count / rate + 60)
    await asyncio.sleep(1.0)
    batch.seconds = time.monotonic() - t0
    batch.asterisk_cpu = max(0.0, cpu_seconds(asterisk.pid) - a0 - idle.asterisk_cpu_per_s * batch.seconds)
    batch.daemon_cpu = max(0.0, cpu_seconds(pid) - d0 - idle.daemon_cpu_per_s * batch.seconds)
    if status != 0:
        batch.failed.append(f"SIPp callers exited {status}: {trunk.sipp.errors[-500:]}")
    measure(batch, trunk.dialogs(), phone_calls(ringing, since))
    if not native:
        batch.failed += await wrong_records(daemon, numbers)
    return batch


async def wrong_records(daemon: RunningDaemon, numbers: list[str]) -> list[str]:
    status, body = await daemon.api("GET", "/api/v1/calls?limit=500")
    if status != 200:
        return [f"GET /api/v1/calls: HTTP {status}"]
    records = {r["caller"]: r for r in body["calls"] if r["caller"] in numbers}
    return [
        f"{number}: {(records.get(number) or {}).get('outcome')}/{(records.get(number) or {}).get('reason')}"
        for number in numbers
        if (records.get(number) or {}).get("outcome") != "answered"
    ]


async def calls_in_progress(daemon: RunningDaemon) -> int:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(f"{daemon.base_url}/metrics") as response,
    ):
        text = await response.text()
    found = re.search(r"^callkeeper_calls_in_progress (\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


async def hold(count: int, asterisk: AsteriskSandbox, daemon: RunningDaemon, workdir: Path) -> dict[str, Any]:
    """`count` calls in progress at once (each answered, then talking): the daemon's RSS per call."""
    pid = daemon.process.pid if daemon.process else 0
    numbers = [f"+1415900{index:04d}" for index in range(count)]
    rss_before, peak, rss_at_peak = rss_bytes(pid), 0, 0
    placing = count / HOLD_RATE
    async with callers(
        (asterisk.sandbox.sip_host, asterisk.sandbox.sip_port),
        [Caller(HOLD_NUMBER, number) for number in numbers],
        workdir,
        name="hold",
        rate=HOLD_RATE,
        talk_ms=round((placing + 20) * 1000),
    ) as trunk:
        deadline = time.monotonic() + placing + 15
        while time.monotonic() < deadline and peak < count:
            live = await calls_in_progress(daemon)
            if live >= peak:
                peak, rss_at_peak = live, rss_bytes(pid)
            await asyncio.sleep(0.5)
        status = await trunk.wait(placing + 60)
    wrong = await wrong_records(daemon, numbers)
    per_call = max(0, rss_at_peak - rss_before) / peak / 1024 if peak else 0.0
    print_table(
        f"memory: {count} calls placed at {HOLD_RATE:g}/s, each staying on",
        ["live calls at peak", "daemon RSS before MiB", "at peak MiB", "KB per live call", "failed"],
        [[peak, rss_before / 2**20, rss_at_peak / 2**20, per_call, len(wrong) + (status != 0)]],
    )
    return {
        "calls": count,
        "peak_live_calls": peak,
        "rss_before_bytes": rss_before,
        "rss_at_peak_bytes": rss_at_peak,
        "kb_per_live_call": per_call,
        "failed": wrong + ([f"SIPp callers exited {status}"] if status else []),
    }


async def run(
    calls: int, rounds: int, rate: float, hold_calls: int, idle_seconds: float = 10.0
) -> dict[str, Any]:
    with (
        asterisk_sandbox() as asterisk,
        tempfile.TemporaryDirectory(prefix="callkeeper-sip-load-") as tmp,
        running_daemon(asterisk.sandbox, Path(tmp), callkeeper_config()) as daemon,
    ):
        assert daemon.process is not None
        sip = (asterisk.sandbox.sip_host, asterisk.sandbox.sip_port)
        async with phones(sip, Path(tmp), PHONES) as ringing:
            idle = await measure_idle(daemon.process.pid, asterisk.pid, idle_seconds)
            batches = [
                await run_batch(
                    system,
                    round_number,
                    count=calls,
                    rate=rate,
                    asterisk=asterisk,
                    daemon=daemon,
                    ringing=list(ringing.values()),
                    idle=idle,
                    workdir=Path(tmp),
                )
                for round_number in range(rounds)
                for system in SYSTEMS
            ]
            result = report(batches, asterisk.version, rate)
            result["idle_daemon_cpu_per_s"] = idle.daemon_cpu_per_s
            print(f"daemon CPU at idle: {idle.daemon_cpu_per_s * 1e3:.2f} ms/s")
            if hold_calls:
                result["memory"] = await hold(hold_calls, asterisk, daemon, Path(tmp))
    return result


def report(batches: list[Batch], version: str, rate: float) -> dict[str, Any]:
    systems: dict[str, dict[str, Any]] = {}
    for system in SYSTEMS:
        mine = [b for b in batches if b.system == system]
        calls = sum(b.calls for b in mine)
        summary: dict[str, Any] = {
            "calls": calls,
            "asterisk_cpu_ms_per_call": sum(b.asterisk_cpu for b in mine) / calls * 1e3 if calls else 0.0,
            "daemon_cpu_ms_per_call": sum(b.daemon_cpu for b in mine) / calls * 1e3 if calls else 0.0,
            "failed": [f for b in mine for f in b.failed],
        }
        for name in FIGURES:
            values = [v for b in mine for v in b.figures[name]]
            summary[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}
        systems[system] = summary
    print_table(
        f"SIP load: {rate:g} calls/s into 6 phones, talk {TALK_MS / 1000:g} s (Asterisk {version})",
        [
            "flow",
            "calls",
            "INVITE->phone INVITE ms p50/p99",
            "INVITE->180 ms p50/p99",
            "phone 200->caller 200 ms p50/p99",
            "Asterisk ms CPU/call",
            "daemon ms CPU/call",
            "failed",
        ],
        [
            [
                name,
                s["calls"],
                *(f"{s[figure]['p50']:.1f} / {s[figure]['p99']:.1f}" for figure in FIGURES),
                s["asterisk_cpu_ms_per_call"],
                s["daemon_cpu_ms_per_call"],
                len(s["failed"]),
            ]
            for name, s in systems.items()
        ],
    )
    native, ours = systems["native"], systems["callkeeper"]
    print(
        "callkeeper over Dial(), p50 / p99 ms: "
        + ", ".join(
            f"{figure} {ours[figure]['p50'] - native[figure]['p50']:+.1f} / "
            f"{ours[figure]['p99'] - native[figure]['p99']:+.1f}"
            for figure in FIGURES
        )
    )
    asterisk_cpu = ours["asterisk_cpu_ms_per_call"]
    ratio = ours["daemon_cpu_ms_per_call"] / asterisk_cpu if asterisk_cpu else 0.0
    print(
        f"daemon CPU per call {ours['daemon_cpu_ms_per_call']:.2f} ms = {ratio:.2f}x Asterisk's; "
        f"{native['daemon_cpu_ms_per_call']:.2f} ms per call it does not handle (its users' device states)"
    )
    for name, s in systems.items():
        for failure in s["failed"][:5]:
            print(f"  {name} failed: {failure}")
    return {"asterisk": version, "rate": rate, "talk_ms": TALK_MS, "phones": PHONES, "systems": systems}


def main() -> int:
    parser = batch_parser(__doc__, calls=60, rounds=1, rate=2.0, name="sip_load")
    parser.add_argument("--hold", type=int, default=250, help="calls kept in progress at once for memory")
    args = parser.parse_args()
    result = asyncio.run(run(args.calls, args.rounds, args.rate, args.hold))
    write_results(args.name, result)
    failed = any(s["failed"] for s in result["systems"].values()) or result.get("memory", {}).get("failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
