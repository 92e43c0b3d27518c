"""Every row of the verdict table, on real calls through the sandbox Asterisk, read back from
GET /api/v1/calls. Callers and users are Local channels running the test dialplan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import Sandbox
from tests.integration.daemon import TOKEN, RunningDaemon, running_daemon
from tests.integration.sandbox_calls import hang_up

LONG_PROMPT = "sound:demo-congrats"  # about 30 s: the caller acts while it plays
today = datetime.now(UTC).date()

CONFIG: dict[str, Any] = {
    "users": {
        "alice": {"endpoint": "Local/alice-2@user-answer"},
        "bob": {"endpoint": "Local/bob@user-noanswer"},
        "erin": {"endpoint": "Local/erin@user-noanswer"},
        "rita": {"endpoint": "Local/rita@user-reject"},
        "olivia": {"endpoint": "PJSIP/offline1"},
        **{f"pool{n}": {"endpoint": f"Local/pool{n}-2@user-answer"} for n in range(1, 6)},
        "oscar": {"endpoint": "PJSIP/offline2"},
    },
    "ring_groups": {
        "answers": {"members": ["alice"], "ring_seconds": 10},
        "rings": {"members": ["bob", "erin"], "ring_seconds": 2},
        "fishing": {"members": ["bob"], "ring_seconds": 30, "fishing_mode": True},
        "nobody": {"members": ["olivia"]},
        "long": {"members": ["bob", "erin"], "ring_seconds": 30},
        "pool": {"members": [f"pool{n}" for n in range(1, 6)], "ring_seconds": 15},
        "queue-long": {"members": ["oscar"], "queue": {"max_wait_seconds": 120}},
        "queue-short": {"members": ["oscar"], "queue": {"max_wait_seconds": 3}},
    },
    "ivrs": {
        "menu": {
            "prompt": LONG_PROMPT,
            "timeout_seconds": 5,
            "attempts": 1,
            "options": {"1": "ring_group:answers", "4": "ivr:submenu", "9": "voicemail", "0": "dead_end"},
        },
        "submenu": {"prompt": LONG_PROMPT, "options": {"1": "ring_group:answers"}},
        "mixed": {
            "prompt": LONG_PROMPT,
            "options": {"1": "ring_group:pool", "2": "ring_group:long", "0": "dead_end"},
        },
    },
    "lines": {
        "welcome": {"numbers": ["+15550001001"], "welcome": LONG_PROMPT, "route": "ring_group:answers"},
        "ivr": {"numbers": ["+15550001002"], "route": "ivr:menu"},
        "ring": {"numbers": ["+15550001003"], "route": "ring_group:rings"},
        "fishing": {"numbers": ["+15550001004"], "route": "ring_group:fishing"},
        "fastforward": {"numbers": ["+15550001005"], "route": "ring_group:nobody"},
        "queue": {"numbers": ["+15550001006"], "route": "ring_group:queue-long"},
        "queuemax": {"numbers": ["+15550001007"], "route": "ring_group:queue-short"},
        "personal": {"numbers": ["+15550001008"], "route": "user:bob"},
        "personal-declined": {"numbers": ["+15550001009"], "route": "user:rita"},
        "afterhours": {
            "numbers": ["+15550001010"],
            "route": "ring_group:answers",
            "business_hours": {"daily": ["09:00-17:00"]},
            "holidays": [str(today - timedelta(days=1)), str(today), str(today + timedelta(days=1))],
            "after_hours": "voicemail",
        },
        "voicemail": {"numbers": ["+15550001011"], "route": "voicemail"},
        "deadend": {"numbers": ["+15550001012"], "route": "dead_end"},
        "answered": {"numbers": ["+15550001013"], "route": "ring_group:answers", "short_abandon_seconds": 5},
        "forward": {"numbers": ["+15550001014"], "route": "external:+14155550100"},
        "mixed": {"numbers": ["+15550001015"], "welcome": "sound:hello-world", "route": "ivr:mixed"},
    },
}
for _line in CONFIG["lines"].values():
    _line.setdefault("missed_calls", {"mailbox": "1000@default"})


@pytest.fixture(scope="module")
def daemon(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with running_daemon(sandbox, tmp_path_factory.mktemp("verdicts"), CONFIG) as running:
        yield running


async def verdict_of(daemon: RunningDaemon, dialled: str, script: str | None) -> dict[str, object]:
    call = await daemon.place(dialled, script)
    return await daemon.verdict(call)


@pytest.mark.parametrize(
    ("dialled", "script", "outcome", "reason"),
    [
        pytest.param("+15550001001", "wait:2", "abandoned", "welcome_hangup", id="welcome_hangup"),
        pytest.param("+15550001002", "wait:2", "abandoned", "ivr_hangup", id="ivr_hangup"),
        pytest.param(
            "+15550001002", "wait:1/dtmf:4/wait:2", "abandoned", "ivr_hangup_after_input", id="after_input"
        ),
        pytest.param("+15550001003", "wait:1", "missed", "ring_group_caller_hangup", id="rg_caller_hangup"),
        pytest.param("+15550001004", "wait:2", "abandoned", "fishing_hangup", id="fishing_hangup"),
        pytest.param("+15550001006", "wait:2", "missed", "queue_caller_hangup", id="queue_caller_hangup"),
        pytest.param("+15550001008", "wait:2", "missed", "personal_line_caller_hangup", id="personal_hangup"),
        pytest.param("+15550001012", "wait:5", "ignored", "dead_end", id="dead_end"),
        pytest.param("+15550001013", "wait:6", "answered", "answered", id="answered"),
        pytest.param("+15550001014", "wait:4", "answered", "answered", id="external_answered"),
    ],
)
async def test_verdict_table(
    daemon: RunningDaemon, dialled: str, script: str, outcome: str, reason: str
) -> None:
    record = await verdict_of(daemon, dialled, script)
    assert (record["outcome"], record["reason"]) == (outcome, reason), record


@pytest.mark.parametrize(
    ("dialled", "reason"),
    [
        pytest.param("+15550001003", "ring_group_no_answer", id="rang_out"),
        pytest.param("+15550001005", "no_agents_available", id="fast_forward"),
        pytest.param("+15550001007", "queue_max_wait", id="queue_max_wait"),
        pytest.param("+15550001009", "personal_line_no_answer", id="personal_no_answer"),
        pytest.param("+15550001010", "after_hours", id="after_hours"),
        pytest.param("+15550001011", "voicemail", id="voicemail"),
    ],
)
async def test_missed_then_voicemail(daemon: RunningDaemon, dialled: str, reason: str) -> None:
    """The caller stays through the greeting and leaves a message: missed, with the voicemail."""
    record = await verdict_of(
        daemon, dialled, "wait:12/play:hello-world/play:hello-world/play:hello-world/wait:1"
    )
    assert (record["outcome"], record["reason"]) == ("missed", reason), record
    voicemail = record["voicemail"]
    assert isinstance(voicemail, dict), record
    assert voicemail["left"] is True and int(voicemail["seconds"]) >= 1, record


async def test_voicemail_hangup_before_the_beep_leaves_nothing(daemon: RunningDaemon) -> None:
    record = await verdict_of(daemon, "+15550001011", "wait:1")
    assert (record["outcome"], record["reason"]) == ("missed", "voicemail")
    assert record["voicemail"] == {"left": False, "seconds": 0, "mailbox": "1000@default"}


async def test_answered_record_has_the_journey(daemon: RunningDaemon) -> None:
    record = await verdict_of(daemon, "+15550001013", "wait:5")
    assert record["answered_by"] == "alice"
    assert record["line"] == "answered" and record["caller"] == "+14155550111"
    assert record["dialed"] == "+15550001013"
    steps = record["steps"]
    assert isinstance(steps, list)
    assert [s["stage"] for s in steps] == ["ring_group", "answered"]
    started = datetime.fromisoformat(str(record["started_at"]))
    ended = datetime.fromisoformat(str(record["ended_at"]))
    assert 4 <= (ended - started).total_seconds() <= 10
    # Its requests went over the event socket: the daemon's event filter lets the answers through.
    lane = [json.loads(line) for line in daemon.log.splitlines() if '"ari_websocket_requests"' in line]
    assert lane and all(entry["enabled"] for entry in lane), lane


async def test_short_abandon_is_flagged(daemon: RunningDaemon) -> None:
    call = await daemon.place("+15550001013")
    await asyncio.sleep(1)
    await hang_up(daemon.sandbox, call.caller)
    record = await daemon.verdict(call)
    assert (record["outcome"], record["reason"], record["short"]) == (
        "missed",
        "ring_group_caller_hangup",
        True,
    )


async def test_calls_api_filters_and_auth(daemon: RunningDaemon) -> None:
    status, body = await daemon.api("GET", "/api/v1/calls?limit=500&outcome=answered")
    assert status == 200
    assert body["calls"] and all(c["outcome"] == "answered" for c in body["calls"])
    started = [c["started_at"] for c in body["calls"]]
    assert started == sorted(started, reverse=True)
    status, _ = await daemon.api("GET", "/api/v1/calls?line=answered&limit=1")
    assert status == 200
    async with aiohttp.ClientSession() as session, session.get(f"{daemon.base_url}/api/v1/calls") as response:
        assert response.status == 401
    assert TOKEN not in daemon.log


MIXED = [
    ("hangup", "abandoned", "welcome_hangup"),
    ("wait:3", "abandoned", "ivr_hangup"),
    ("wait:2/dtmf:1/wait:5", "answered", "answered"),
    ("wait:2/dtmf:2/wait:2", "missed", "ring_group_caller_hangup"),
    ("wait:2/dtmf:0/wait:3", "ignored", "dead_end"),
]


async def test_twenty_calls_at_once_through_one_line(daemon: RunningDaemon) -> None:
    scenarios = MIXED * 4
    calls = await asyncio.gather(*(daemon.place("+15550001015", script) for script, _, _ in scenarios))
    records = await asyncio.gather(*(daemon.verdict(call) for call in calls))
    got = [(r["outcome"], r["reason"]) for r in records]
    assert got == [(outcome, reason) for _, outcome, reason in scenarios]
    await daemon.assert_nothing_left()


async def test_nothing_left_behind(daemon: RunningDaemon) -> None:
    await daemon.assert_nothing_left()
