"""The calls the benchmarks place: callkeeper configs for the sandbox's test dialplan and the
callers' scripts (tests/asterisk/README.md), each with the verdict it must get."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Json = dict[str, Any]
LONG_PROMPT = "sound:demo-congrats"  # about 30 s: the caller acts while it plays
MAILBOX = "1000@default"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    dialled: str
    script: str
    outcome: str
    reason: str
    weight: int = 1


def _with_mailbox(lines: dict[str, Json]) -> dict[str, Json]:
    for line in lines.values():
        line.setdefault("missed_calls", {"mailbox": MAILBOX})
    return lines


# ------------------------------------------------------------------ every verdict (the journal)


def every_verdict_config() -> Json:
    """Every row of the verdict table. Answering users ring 1 s, talk 2 s and hang up; a pool of
    them rung one after another keeps answered calls answered when several overlap."""
    today = datetime.now(UTC).date()
    answerers = [f"ans{n}" for n in range(1, 7)]
    return {
        "users": {
            **{name: {"endpoint": f"Local/{name}-1-2@user-answer"} for name in answerers},
            "bob": {"endpoint": "Local/bob@user-noanswer"},
            "erin": {"endpoint": "Local/erin@user-noanswer"},
            "carl": {"endpoint": "Local/carl@user-busy"},
            "fred": {"endpoint": "Local/fred@user-congestion"},
            "rita": {"endpoint": "Local/rita@user-reject"},
            "olivia": {"endpoint": "PJSIP/offline1"},
            "oscar": {"endpoint": "PJSIP/offline2"},
        },
        "ring_groups": {
            "answers": {"members": answerers, "strategy": "sequential", "ring_seconds": 10},
            "rings": {"members": ["bob", "erin", "carl", "fred"], "ring_seconds": 4},
            "fishing": {"members": ["bob"], "ring_seconds": 30, "fishing_mode": True},
            "nobody": {"members": ["olivia"]},
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
        },
        "lines": _with_mailbox(
            {
                "welcome": {
                    "numbers": ["+15550001001"],
                    "welcome": LONG_PROMPT,
                    "route": "ring_group:answers",
                },
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
                    "holidays": [str(today + timedelta(days=d)) for d in (-1, 0, 1)],
                    "after_hours": "voicemail",
                },
                "voicemail": {"numbers": ["+15550001011"], "route": "voicemail"},
                "deadend": {"numbers": ["+15550001012"], "route": "dead_end"},
                "answered": {"numbers": ["+15550001013"], "route": "ring_group:answers"},
                "forward": {"numbers": ["+15550001014"], "route": "external:+14155550100"},
            }
        ),
    }


EVERY_VERDICT = (
    Scenario("welcome_hangup", "+15550001001", "wait:2", "abandoned", "welcome_hangup"),
    Scenario("ivr_hangup", "+15550001002", "wait:2", "abandoned", "ivr_hangup"),
    Scenario(
        "ivr_after_input", "+15550001002", "wait:1/dtmf:4/wait:2", "abandoned", "ivr_hangup_after_input"
    ),
    Scenario("ivr_answered", "+15550001002", "wait:1/dtmf:1/wait:6", "answered", "answered"),
    Scenario("ivr_dead_end", "+15550001002", "wait:1/dtmf:0/wait:2", "ignored", "dead_end"),
    Scenario("ivr_voicemail", "+15550001002", "wait:1/dtmf:9/wait:3", "missed", "voicemail"),
    Scenario("ring_group_caller_hangup", "+15550001003", "wait:1", "missed", "ring_group_caller_hangup", 2),
    Scenario("ring_group_no_answer", "+15550001003", "wait:7", "missed", "ring_group_no_answer", 2),
    Scenario("fishing_hangup", "+15550001004", "wait:2", "abandoned", "fishing_hangup"),
    Scenario("no_agents_available", "+15550001005", "wait:3", "missed", "no_agents_available"),
    Scenario("queue_caller_hangup", "+15550001006", "wait:2", "missed", "queue_caller_hangup"),
    Scenario("queue_max_wait", "+15550001007", "wait:5", "missed", "queue_max_wait"),
    Scenario(
        "personal_line_caller_hangup", "+15550001008", "wait:2", "missed", "personal_line_caller_hangup"
    ),
    Scenario("personal_line_no_answer", "+15550001009", "wait:3", "missed", "personal_line_no_answer"),
    Scenario("after_hours", "+15550001010", "wait:3", "missed", "after_hours"),
    Scenario(
        "voicemail_message",
        "+15550001011",
        "wait:12/play:hello-world/play:hello-world/wait:1",
        "missed",
        "voicemail",
    ),
    Scenario("voicemail_hangup", "+15550001011", "wait:1", "missed", "voicemail"),
    Scenario("dead_end", "+15550001012", "wait:3", "ignored", "dead_end"),
    Scenario("answered", "+15550001013", "wait:6", "answered", "answered", 3),
    Scenario("external_answered", "+15550001014", "wait:4", "answered", "answered"),
    Scenario("unknown_number", "+15550009999", "wait:1", "ignored", "unknown_number"),
)


# ------------------------------------------------------------------ one line under load

LOAD_NUMBER = "+15550002001"
WELCOME_SECONDS = 3  # sound:tt-weasels is 2.96 s


def load_config() -> Json:
    """One line: a 3 s welcome, then a ring group whose members answer (two of them, after 2 s,
    talking until the caller hangs up), never answer, are busy or decline; 6 s of ringing, then
    voicemail."""
    return {
        "users": {
            "ann": {"endpoint": "Local/ann-2@user-answer"},
            "amy": {"endpoint": "Local/amy-2@user-answer"},
            "bob": {"endpoint": "Local/bob@user-noanswer"},
            "carl": {"endpoint": "Local/carl@user-busy"},
            "rita": {"endpoint": "Local/rita-1@user-reject"},
        },
        "ring_groups": {"front": {"members": ["ann", "amy", "bob", "carl", "rita"], "ring_seconds": 6}},
        "lines": _with_mailbox(
            {"main": {"numbers": [LOAD_NUMBER], "welcome": "sound:tt-weasels", "route": "ring_group:front"}}
        ),
    }


# While both answering users talk, a caller who stays is rung out to voicemail: which of the two
# a `stays` caller gets is decided by Asterisk's view of the call (did a user's channel answer?).
LOAD_MIX = (
    Scenario("abandoned", LOAD_NUMBER, "wait:1", "abandoned", "welcome_hangup", 2),
    Scenario("missed", LOAD_NUMBER, f"wait:{WELCOME_SECONDS + 1}", "missed", "ring_group_caller_hangup", 3),
    Scenario(
        "stays",
        LOAD_NUMBER,
        f"wait:{WELCOME_SECONDS + 11}",
        "answered|missed",
        "answered|ring_group_no_answer",
        5,
    ),
)


def pick(scenarios: tuple[Scenario, ...], count: int, seed: int = 6) -> list[Scenario]:
    """`count` scenarios drawn by weight, every scenario at least once when count allows."""
    chooser = random.Random(seed)
    chosen = list(scenarios)[:count]
    weights = [s.weight for s in scenarios]
    chosen += chooser.choices(scenarios, weights, k=max(0, count - len(chosen)))
    chooser.shuffle(chosen)
    return chosen
