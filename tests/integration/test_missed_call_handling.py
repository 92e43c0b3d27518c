"""A line's missed-call handling on real calls: each action (voicemail, another line, an outside
number) after each trigger, and press 1 for voicemail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.integration.daemon import RunningDaemon, running_daemon

today = datetime.now(UTC).date()
TRIGGERS: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (line settings, caller script, the reason that decides the verdict before the answer)
    "ivr": ({"route": "ivr:menu"}, "wait:1/dtmf:9/wait:9", "voicemail"),
    "fast-forward": ({"route": "ring_group:nobody"}, "wait:9", "no_agents_available"),
    "queue": ({"route": "ring_group:queue-short"}, "wait:10", "queue_max_wait"),
    "rang-out": ({"route": "ring_group:rings"}, "wait:9", "ring_group_no_answer"),
    "personal": ({"route": "user:rita"}, "wait:9", "personal_line_no_answer"),
    "after-hours": (
        {
            "route": "ring_group:rings",
            "business_hours": {"daily": ["09:00-17:00"]},
            "holidays": [str(today + timedelta(days=d)) for d in (-1, 0, 1)],
        },
        "wait:9",
        "after_hours",
    ),
}
ACTIONS = {"line": "line:forwarded", "external": "external:+14155550100"}


def number(action: int, trigger: int) -> str:
    return f"+1555000{5 + action}{trigger:03d}"


LINES: dict[str, Any] = {
    "forwarded": {"numbers": ["+15550007000"], "route": "external:+14155550100"},
    "press-one": {
        "numbers": ["+15550007001"],
        "route": "voicemail",
        "missed_calls": {
            "mailbox": "1000@default",
            "press_1_for_voicemail": True,
            "press_1_prompt": "sound:hello-world",
        },
    },
}
for a, (action_name, action) in enumerate(ACTIONS.items()):
    for t, (trigger, (settings, _, _)) in enumerate(TRIGGERS.items()):
        LINES[f"{action_name}-{trigger}"] = {
            "numbers": [number(a, t)],
            **settings,
            "missed_calls": {"action": action},
        }

CONFIG = {
    "users": {
        "bob": {"endpoint": "Local/bob@user-noanswer"},
        "erin": {"endpoint": "Local/erin@user-noanswer"},
        "rita": {"endpoint": "Local/rita@user-reject"},
        "olivia": {"endpoint": "PJSIP/offline1"},
    },
    "ring_groups": {
        "rings": {"members": ["bob", "erin"], "ring_seconds": 2},
        "nobody": {"members": ["olivia"]},
        "queue-short": {"members": ["olivia"], "queue": {"max_wait_seconds": 3}},
    },
    "ivrs": {"menu": {"prompt": "sound:demo-congrats", "options": {"9": "voicemail"}}},
    "lines": LINES,
}


@pytest.fixture(scope="module")
def daemon(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with running_daemon(sandbox, tmp_path_factory.mktemp("missed"), CONFIG) as running:
        yield running


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_each_action_after_each_trigger(daemon: RunningDaemon, action: str) -> None:
    a = list(ACTIONS).index(action)
    triggers = list(TRIGGERS.items())
    calls = await asyncio.gather(
        *(daemon.place(number(a, t), script) for t, (_, (_, script, _)) in enumerate(triggers))
    )
    records = await asyncio.gather(*(daemon.verdict(call) for call in calls))
    for (trigger, _), record in zip(triggers, records, strict=True):
        stages = [step["stage"] for step in record["steps"]]
        assert record["outcome"] == "answered", (trigger, record)
        assert "missed_call_handling" in stages, (trigger, stages)
        assert ("line" if action == "line" else "external") in stages, (trigger, stages)
        assert record["answered_by"] == "external:+14155550100", (trigger, record)


async def test_the_verdict_before_the_answer_is_kept_in_the_steps(daemon: RunningDaemon) -> None:
    """The record says why the call went to missed-call handling even when the outside number answered."""
    for t, (trigger, (_, script, reason)) in enumerate(TRIGGERS.items()):
        if trigger in ("ivr", "after-hours"):
            continue
        record = await daemon.verdict(await daemon.place(number(1, t), script))
        assert any(step["stage"].endswith("_ended") for step in record["steps"]), (trigger, reason, record)


async def test_press_1_leaves_a_voicemail(daemon: RunningDaemon) -> None:
    script = "wait:2/dtmf:1/wait:12/play:hello-world/play:hello-world/play:hello-world/wait:1"
    record = await daemon.verdict(await daemon.place("+15550007001", script))
    assert (record["outcome"], record["reason"]) == ("missed", "voicemail")
    assert record["voicemail"]["left"] is True, record


async def test_no_press_1_no_voicemail(daemon: RunningDaemon) -> None:
    record = await daemon.verdict(await daemon.place("+15550007001", "wait:10"))
    assert (record["outcome"], record["reason"]) == ("missed", "voicemail")
    assert record["voicemail"] is None
    assert [s["stage"] for s in record["steps"]][-1] == "press_1"
    await daemon.assert_nothing_left()
