"""The daemon's life cycle on real calls: killed in every stage of a call and started again on the
same store, Asterisk restarted under it, configuration reloaded, stopped with calls up, and what
it tells systemd."""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Sandbox
from tests.integration.daemon import RunningDaemon, daemon_config, free_port, running_daemon
from tests.integration.sandbox_calls import PlacedCall, ari, hang_up, list_bridges, wait_until

Json = dict[str, Any]
LONG_PROMPT = "sound:demo-congrats"  # about 30 s
VOICEMAIL_MESSAGE = "play:hello-world/play:hello-world/play:hello-world/wait:1"


def lines(**numbered: Json) -> Json:
    return {name: {"missed_calls": {"mailbox": "1000@default"}, **line} for name, line in numbered.items()}


async def last_stage(daemon: RunningDaemon, call: PlacedCall) -> str | None:
    record = await daemon.call(call.inbound)
    return str(record["steps"][-1]["stage"]) if record and record["steps"] else None


async def channel_state(sandbox: Sandbox, channel_id: str) -> str | None:
    status, body = await ari(sandbox, "GET", f"/channels/{channel_id}")
    return str(body["state"]) if status == 200 else None


async def bridged(sandbox: Sandbox, call: PlacedCall) -> bool:
    """The caller talks with someone in the call's bridge."""
    return any(
        b["id"] == f"callkeeper-{call.inbound}" and len(b["channels"]) == 2
        for b in await list_bridges(sandbox)
    )


def stored_records(workdir: Path) -> dict[str, Json]:
    """The records in the daemon's SQLite store (read while no daemon runs)."""
    with sqlite3.connect(workdir / "callkeeper.db") as db:
        db.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in db.execute("SELECT * FROM calls")}


# ---------------------------------------------------------------- SIGKILL in every stage

KILL_CONFIG: Json = {
    "users": {
        "amy": {"endpoint": "Local/amy-2@user-answer"},
        "ivy": {"endpoint": "Local/ivy-2@user-answer"},
        "alice": {"endpoint": "Local/alice-2@user-answer"},
        "tom": {"endpoint": "Local/tom-2@user-answer"},
        "bob": {"endpoint": "Local/bob@user-noanswer"},
        "dan": {"endpoint": "Local/dan-15@user-answer"},
        "erin": {"endpoint": "Local/erin-1-10@user-answer"},
        "oscar": {"endpoint": "PJSIP/offline1"},
    },
    "ring_groups": {
        "answers": {"members": ["amy"], "ring_seconds": 30},
        "menu": {"members": ["ivy"], "ring_seconds": 30},
        "talks": {"members": ["alice"], "ring_seconds": 30},
        "talks-too": {"members": ["tom"], "ring_seconds": 30},
        "rings": {"members": ["bob"], "ring_seconds": 60},
        "dan": {"members": ["dan"], "ring_seconds": 30},
        "erin": {"members": ["erin"], "ring_seconds": 30},
        "queue": {"members": ["oscar"], "queue": {"max_wait_seconds": 120}},
    },
    "ivrs": {"menu": {"prompt": LONG_PROMPT, "timeout_seconds": 30, "options": {"1": "ring_group:menu"}}},
    "lines": lines(
        welcome={"numbers": ["+15550005001"], "welcome": LONG_PROMPT, "route": "ring_group:answers"},
        ivr={"numbers": ["+15550005002"], "route": "ivr:menu"},
        ringing={"numbers": ["+15550005003"], "route": "ring_group:rings"},
        pickup={"numbers": ["+15550005004"], "route": "ring_group:dan"},
        queue={"numbers": ["+15550005005"], "route": "ring_group:queue"},
        talking={"numbers": ["+15550005006"], "route": "ring_group:talks"},
        talking2={"numbers": ["+15550005009"], "route": "ring_group:talks-too"},
        userleaves={"numbers": ["+15550005007"], "route": "ring_group:erin"},
        voicemail={"numbers": ["+15550005008"], "route": "voicemail"},
    ),
}


@dataclass(frozen=True)
class Scenario:
    """A call killed in `stage`; `leaves` if the caller hangs up while no daemon runs."""

    name: str
    dialled: str
    script: str | None
    stage: str
    leaves: bool
    outcome: str
    reason: str
    steps: list[str]


SCENARIOS = [
    Scenario("welcome", "+15550005001", "wait:35", "welcome", False, "answered", "answered",
             ["welcome", "adopted", "ring_group", "answered"]),
    Scenario("welcome-gone", "+15550005001", None, "welcome", True, "abandoned", "welcome_hangup",
             ["welcome"]),
    Scenario("ivr", "+15550005002", "wait:28/dtmf:1/wait:8", "ivr", False, "answered", "answered",
             ["ivr", "adopted", "ivr", "dtmf", "ring_group", "answered"]),
    Scenario("ivr-gone", "+15550005002", None, "ivr", True, "abandoned", "ivr_hangup", ["ivr"]),
    Scenario("ringing", "+15550005003", "wait:30", "ring_group", False, "missed",
             "ring_group_caller_hangup", ["ring_group", "adopted", "ring_group", "caller_hangup"]),
    Scenario("ringing-gone", "+15550005003", None, "ring_group", True, "missed",
             "ring_group_caller_hangup", ["ring_group"]),
    Scenario("picked-up-meanwhile", "+15550005004", "wait:30", "ring_group", False, "answered",
             "answered", ["ring_group", "adopted", "answered"]),
    Scenario("queued", "+15550005005", "wait:30", "queue", False, "missed", "queue_caller_hangup",
             ["ring_group", "queue", "adopted", "queue", "caller_hangup"]),
    Scenario("queued-gone", "+15550005005", None, "queue", True, "missed", "queue_caller_hangup",
             ["ring_group", "queue"]),
    Scenario("talking", "+15550005006", "wait:35", "answered", False, "answered", "answered",
             ["ring_group", "answered", "adopted"]),
    Scenario("talking-gone", "+15550005009", None, "answered", True, "answered", "answered",
             ["ring_group", "answered"]),
    Scenario("user-left-meanwhile", "+15550005007", None, "answered", False, "answered", "answered",
             ["ring_group", "answered", "adopted"]),
    Scenario("voicemail", "+15550005008", f"wait:24/{VOICEMAIL_MESSAGE}", "voicemail", False, "missed",
             "voicemail", ["missed_call_handling", "voicemail", "adopted", "caller_hangup"]),
    Scenario("voicemail-gone", "+15550005008", None, "voicemail", True, "missed", "voicemail",
             ["missed_call_handling", "voicemail"]),
]  # fmt: skip


async def test_sigkill_in_every_stage_then_restart(sandbox: Sandbox, tmp_path: Path) -> None:
    with running_daemon(sandbox, tmp_path, KILL_CONFIG) as daemon:
        calls = {s.name: await daemon.place(s.dialled, s.script) for s in SCENARIOS}
        for s in SCENARIOS:
            await wait_until(
                partial(_at, daemon, calls[s.name], s.stage), within=15, what=f"{s.name} in {s.stage}"
            )
        for talking in ("talking", "talking-gone", "user-left-meanwhile"):
            await wait_until(partial(bridged, sandbox, calls[talking]), within=5, what=f"{talking} bridged")
        assert await channel_state(sandbox, f"{calls['picked-up-meanwhile'].inbound}-leg-1") != "Up"

        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        for s in SCENARIOS:
            if s.leaves:
                await hang_up(sandbox, calls[s.name].caller)
        # While no daemon runs, dan picks up and erin, talking, hangs up.
        picked_up = f"{calls['picked-up-meanwhile'].inbound}-leg-1"
        await wait_until(lambda: _state_is(sandbox, picked_up, "Up"), within=20, what="dan answers")
        erin = f"{calls['user-left-meanwhile'].inbound}-leg-1"
        await wait_until(lambda: _state_is(sandbox, erin, None), within=15, what="erin hangs up")

        daemon.start()
        restarted = time.monotonic()
        await wait_until(lambda: bridged(sandbox, calls["picked-up-meanwhile"]), within=5, what="dan bridged")
        await wait_until(lambda: bridged(sandbox, calls["welcome"]), within=10, what="welcome caller bridged")
        assert time.monotonic() - restarted < 10
        assert await bridged(sandbox, calls["talking"]), "the talking call was cut"

        records = {s.name: await daemon.verdict(calls[s.name], within=60) for s in SCENARIOS}
        wrong = {
            s.name: (records[s.name]["outcome"], records[s.name]["reason"], _steps(records[s.name]))
            for s in SCENARIOS
            if (records[s.name]["outcome"], records[s.name]["reason"], _steps(records[s.name]))
            != (s.outcome, s.reason, s.steps)
            or records[s.name]["end_observed"] is s.leaves
        }
        assert not wrong, f"{wrong}\n{daemon.log[-8000:]}"
        assert records["picked-up-meanwhile"]["answered_by"] == "dan"
        assert records["user-left-meanwhile"]["answered_by"] == "erin"
        assert _seconds(records["talking"]) >= 34, records["talking"]
        assert records["voicemail"]["voicemail"]["left"] is True, records["voicemail"]
        status, listed = await daemon.api("GET", "/api/v1/calls?limit=500")
        assert status == 200
        ids = [c["id"] for c in listed["calls"]]
        assert sorted(ids) == sorted(c.inbound for c in calls.values())
        assert all(c["ended_at"] for c in listed["calls"])
        await daemon.assert_nothing_left()
        assert "call_logic_error" not in daemon.log


async def _at(daemon: RunningDaemon, call: PlacedCall, stage: str) -> bool:
    return await last_stage(daemon, call) == stage


async def _state_is(sandbox: Sandbox, channel_id: str, state: str | None) -> bool:
    return await channel_state(sandbox, channel_id) == state


def _steps(record: Json) -> list[str]:
    return [str(step["stage"]) for step in record["steps"]]


def _seconds(record: Json) -> float:
    return (
        datetime.fromisoformat(record["ended_at"]) - datetime.fromisoformat(record["started_at"])
    ).total_seconds()


# ---------------------------------------------------------------- Asterisk restarted under calls

RESTART_CONFIG: Json = {
    "users": {
        "alice": {"endpoint": "Local/alice-1@user-answer"},
        "bob": {"endpoint": "Local/bob@user-noanswer"},
        "oscar": {"endpoint": "PJSIP/offline2"},
    },
    "ring_groups": {
        "talks": {"members": ["alice"]},
        "rings": {"members": ["bob"], "ring_seconds": 60},
        "queue": {"members": ["oscar"], "queue": {"max_wait_seconds": 120}},
    },
    "lines": lines(
        welcome={"numbers": ["+15550006001"], "welcome": LONG_PROMPT, "route": "ring_group:talks"},
        talking={"numbers": ["+15550006002"], "route": "ring_group:talks"},
        ringing={"numbers": ["+15550006003"], "route": "ring_group:rings"},
        queue={"numbers": ["+15550006004"], "route": "ring_group:queue"},
    ),
}
CUT_OFF = {
    "+15550006001": ("welcome", "abandoned", "welcome_hangup"),
    "+15550006002": ("answered", "answered", "answered"),
    "+15550006003": ("ring_group", "missed", "ring_group_caller_hangup"),
    "+15550006004": ("queue", "missed", "queue_caller_hangup"),
}


@pytest.mark.parametrize("how", ["stopped", "crashed"])
async def test_asterisk_restart_with_calls_up(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    """Stopped, Asterisk hangs every channel up first (flagged as its shutdown); crashed, it says
    nothing and the reconnect finds the calls gone. Either way no caller hung up."""
    with running_daemon(sandbox, tmp_path, RESTART_CONFIG) as daemon:
        calls = {number: await daemon.place(number) for number in CUT_OFF}
        for number, (stage, _, _) in CUT_OFF.items():
            await wait_until(partial(_at, daemon, calls[number], stage), within=10, what=stage)
        await wait_until(lambda: bridged(sandbox, calls["+15550006002"]), within=5, what="talking")

        if how == "stopped":
            sandbox.stop()
        else:
            sandbox.crash()
        try:
            await wait_until(lambda: not daemon.ready(), within=10, what="daemon notices Asterisk is gone")
            await asyncio.sleep(8)  # long enough for an unbounded backoff to wait several seconds
        finally:
            starting = asyncio.create_task(asyncio.to_thread(sandbox.start))
            ari_back, daemon_back = await asyncio.gather(
                _when(lambda: _ari_answers(sandbox)), _when(lambda: asyncio.to_thread(daemon.ready))
            )
            await starting
        reconnect_seconds = daemon_back - ari_back
        assert reconnect_seconds < 2.0, f"ready {reconnect_seconds:.2f} s after ARI was back"

        for number, (_, outcome, reason) in CUT_OFF.items():
            record = await daemon.verdict(calls[number], within=10)
            assert (record["outcome"], record["reason"], record["end_observed"]) == (outcome, reason, False)
        after = await daemon.verdict(await daemon.place("+15550006002", "wait:3"))
        assert (after["outcome"], after["end_observed"]) == ("answered", True)
        await daemon.assert_nothing_left()
        assert "ari_connection_restored" in daemon.log
        print(f"reconnected {reconnect_seconds:.2f} s after ARI was back")


async def _ari_answers(sandbox: Sandbox) -> bool:
    try:
        status, _ = await ari(sandbox, "GET", "/asterisk/info")
    except (OSError, ValueError):  # down, or still loading (an HTML 404)
        return False
    return status == 200


async def _when(predicate: Callable[[], Awaitable[bool]]) -> float:
    await wait_until(predicate, within=60, interval=0.02, what="back")
    return time.monotonic()


# ---------------------------------------------------------------- SIGHUP

RELOAD_CONFIG: Json = {
    "users": {
        "alice": {"endpoint": "Local/alice-2@user-answer"},
        "bob": {"endpoint": "Local/bob-2@user-answer"},
    },
    "ring_groups": {"first": {"members": ["alice"]}, "second": {"members": ["bob"]}},
    "ivrs": {"menu": {"prompt": LONG_PROMPT, "options": {"1": "ring_group:first"}}},
    "lines": lines(main={"numbers": ["+15550007001"], "route": "ivr:menu"}),
}


def reconfigure(daemon: RunningDaemon, change: Callable[[Json], None]) -> None:
    config = yaml.safe_load(daemon.config_path.read_text())
    change(config)
    daemon.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


async def test_sighup_reload_valid_then_invalid(sandbox: Sandbox, tmp_path: Path) -> None:
    with running_daemon(sandbox, tmp_path, RELOAD_CONFIG) as daemon:
        old = await daemon.place("+15550007001", "wait:7/dtmf:1/wait:4")
        await wait_until(lambda: _at(daemon, old, "ivr"), within=10, what="in the menu")

        reconfigure(daemon, lambda c: c["ivrs"]["menu"]["options"].update({"1": "ring_group:second"}))
        daemon.send(signal.SIGHUP)
        await wait_until(lambda: "config_reloaded" in daemon.log, within=10, what="reloaded")
        new = await daemon.place("+15550007001", "wait:2/dtmf:1/wait:4")

        assert (await daemon.verdict(old))["answered_by"] == "alice"  # the config it started with
        assert (await daemon.verdict(new))["answered_by"] == "bob"

        reconfigure(daemon, lambda c: c["lines"]["main"].update({"route": "ring_group:nowhere"}))
        daemon.send(signal.SIGHUP)
        await wait_until(lambda: "reload_rejected" in daemon.log, within=10, what="reload rejected")
        rejected = next(line for line in daemon.log.splitlines() if "reload_rejected" in line)
        assert "callkeeper.yaml:" in rejected and "nowhere" in rejected, rejected
        assert daemon.ready()
        kept = await daemon.verdict(await daemon.place("+15550007001", "wait:2/dtmf:1/wait:4"))
        assert kept["answered_by"] == "bob"
        await daemon.assert_nothing_left()


# ---------------------------------------------------------------- SIGTERM

STOP_CONFIG: Json = {
    "users": {
        "alice": {"endpoint": "Local/alice-1@user-answer"},
        "bob": {"endpoint": "Local/bob@user-noanswer"},
    },
    "ring_groups": {"talks": {"members": ["alice"]}, "rings": {"members": ["bob"], "ring_seconds": 60}},
    "lines": lines(
        talking={"numbers": ["+15550008001"], "route": "ring_group:talks"},
        ringing={"numbers": ["+15550008002"], "route": "ring_group:rings"},
    ),
}


async def test_sigterm_lets_calls_finish_and_hands_new_ones_back(sandbox: Sandbox, tmp_path: Path) -> None:
    with running_daemon(sandbox, tmp_path, {**STOP_CONFIG, "shutdown_grace_seconds": 20}) as daemon:
        assert daemon.process is not None
        talking = await daemon.place("+15550008001", "wait:8")
        await wait_until(lambda: bridged(sandbox, talking), within=5, what="talking")

        daemon.send(signal.SIGTERM)
        stopped = time.monotonic()
        await wait_until(lambda: '"stopping"' in daemon.log, within=5, what="stopping")
        late = await daemon.place("+15550008001", "wait:2")
        await wait_until(
            lambda: _in_context(sandbox, late.inbound, "callkeeper-fallback"), within=5, what="fallback"
        )

        assert await asyncio.to_thread(daemon.process.wait, 25) == 0
        assert time.monotonic() - stopped < 15
        records = stored_records(tmp_path)
        assert (records[talking.inbound]["outcome"], records[talking.inbound]["end_observed"]) == (
            "answered",
            1,
        )
        assert late.inbound not in records
        assert all(r["ended_at"] for r in records.values())
        assert "not_accepting_calls" in daemon.log and "shutdown_grace_expired" not in daemon.log
        await daemon.assert_nothing_left()


async def test_sigterm_grace_expired_ends_the_calls_left(sandbox: Sandbox, tmp_path: Path) -> None:
    with running_daemon(sandbox, tmp_path, {**STOP_CONFIG, "shutdown_grace_seconds": 2}) as daemon:
        talking = await daemon.place("+15550008001")
        ringing = await daemon.place("+15550008002")
        await wait_until(lambda: bridged(sandbox, talking), within=5, what="talking")
        await wait_until(lambda: _at(daemon, ringing, "ring_group"), within=5, what="ringing")

        stopped = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0
        assert time.monotonic() - stopped < 2 + 5

        records = stored_records(tmp_path)
        assert records[talking.inbound]["outcome"] == "answered"
        assert (records[ringing.inbound]["outcome"], records[ringing.inbound]["reason"]) == (
            "missed",
            "failure",
        )
        assert all(r["ended_at"] for r in records.values())
        assert "shutdown_grace_expired" in daemon.log
        await daemon.assert_nothing_left()
        for call in (talking, ringing):
            assert await channel_state(sandbox, call.caller) is None, "a caller was left on the line"


async def _in_context(sandbox: Sandbox, channel_id: str, context: str) -> bool:
    status, body = await ari(sandbox, "GET", f"/channels/{channel_id}")
    return status == 200 and body["dialplan"]["context"] == context


# ---------------------------------------------------------------- systemd notify


async def test_systemd_notify(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        notify.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        received: list[tuple[float, str, bool]] = []

        async def listen() -> None:
            loop = asyncio.get_running_loop()
            while True:
                message = (await loop.sock_recv(notify, 4096)).decode()
                registered = "READY=1" in message and await _app_registered(sandbox)
                received.append((time.monotonic(), message, registered))

        listener = asyncio.create_task(listen())
        port = free_port()
        config_path = tmp_path / "callkeeper.yaml"
        config_path.write_text(yaml.safe_dump(daemon_config(sandbox, tmp_path, port, STOP_CONFIG)))
        daemon = RunningDaemon(sandbox, tmp_path, config_path, port)
        try:
            await asyncio.to_thread(daemon.start)  # the datagrams are checked as they come
            ready = [m for m in received if "READY=1" in m[1]]
            assert len(ready) == 1 and ready[0][2], received
            assert "STATUS=connected to ARI" in ready[0][1]
            await asyncio.sleep(1.2)
            pings = [at for at, message, _ in received if message == "WATCHDOG=1" and at > ready[0][0]]
            assert len(pings) >= 4, received
            assert max(b - a for a, b in itertools.pairwise(pings)) < 0.4
            assert daemon.stop(signal.SIGTERM) == 0
            await wait_until(lambda: any(m == "STOPPING=1" for _, m, _ in received), within=2)
        finally:
            if daemon.process is not None:
                daemon.stop()
            listener.cancel()


async def _app_registered(sandbox: Sandbox) -> bool:
    status, _ = await ari(sandbox, "GET", f"/applications/{sandbox.app}")
    return status == 200
