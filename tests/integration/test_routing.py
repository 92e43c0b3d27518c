"""Ring group strategies, layers, presence, queues and line overrides on real calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.integration.daemon import RunningDaemon, running_daemon

CONFIG: dict[str, Any] = {
    "users": {
        "busy": {"endpoint": "Local/carol@user-busy"},
        "offline": {"endpoint": "PJSIP/offline3"},
        "dave": {"endpoint": "Local/dave-1@user-answer"},
        "nina": {"endpoint": "Local/nina@user-noanswer"},
        "amy": {"endpoint": "Local/amy-1@user-answer"},
        "ben": {"endpoint": "Local/ben-1@user-answer"},
        "quinn": {"endpoint": "Local/quinn-1@user-answer"},
    },
    "ring_groups": {
        "layered": {"layers": [["busy", "offline"], ["dave"]], "ring_seconds": 10},
        "sequential": {"strategy": "sequential", "members": ["nina", "dave"], "ring_seconds": 2},
        "round-robin": {"strategy": "round_robin", "members": ["amy", "ben"]},
        "queued": {"members": ["quinn"], "queue": {"max_wait_seconds": 60}},
    },
    "lines": {
        "layered": {"numbers": ["+15550003001"], "route": "ring_group:layered"},
        "sequential": {"numbers": ["+15550003002"], "route": "ring_group:sequential"},
        "round-robin": {"numbers": ["+15550003003"], "route": "ring_group:round-robin"},
        "queued": {"numbers": ["+15550003004"], "route": "ring_group:queued"},
        "override": {
            "numbers": ["+15550003005"],
            "route": "ring_group:round-robin",
            "after_hours": "dead_end",
        },
    },
}
for _line in CONFIG["lines"].values():
    _line["missed_calls"] = {"mailbox": "1000@default"}


@pytest.fixture(scope="module")
def daemon(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with running_daemon(sandbox, tmp_path_factory.mktemp("routing"), CONFIG) as running:
        yield running


async def test_next_layer_when_the_first_is_busy_or_offline(daemon: RunningDaemon) -> None:
    record = await daemon.verdict(await daemon.place("+15550003001", "wait:5"))
    assert (record["outcome"], record["answered_by"]) == ("answered", "dave")


async def test_sequential_rings_one_after_another(daemon: RunningDaemon) -> None:
    record = await daemon.verdict(await daemon.place("+15550003002", "wait:6"))
    assert (record["outcome"], record["answered_by"]) == ("answered", "dave")


async def test_round_robin_takes_turns(daemon: RunningDaemon) -> None:
    takers = []
    for _ in range(3):
        record = await daemon.verdict(await daemon.place("+15550003003", "wait:3"))
        takers.append(record["answered_by"])
    assert takers[0] != takers[1] and takers[1] != takers[2]


async def test_away_user_is_skipped_and_queue_serves_longest_waiting_first(daemon: RunningDaemon) -> None:
    status, _ = await daemon.api("PUT", "/api/v1/users/quinn/presence", json={"presence": "away"})
    assert status == 200
    first = await daemon.place("+15550003004", "wait:12")
    await asyncio.sleep(1)
    second = await daemon.place("+15550003004", "wait:8")
    await asyncio.sleep(1)
    status, queues = await daemon.api("GET", "/api/v1/queues")
    assert status == 200
    status, _ = await daemon.api("PUT", "/api/v1/users/quinn/presence", json={"presence": "available"})
    assert status == 200
    first_record = await daemon.verdict(first)
    second_record = await daemon.verdict(second)
    assert first_record["answered_by"] == "quinn", first_record
    assert second_record["reason"] == "queue_caller_hangup", second_record
    assert str(queues).count("caller") >= 2, queues


async def test_line_override_closed_then_auto(daemon: RunningDaemon) -> None:
    status, _ = await daemon.api("PUT", "/api/v1/lines/override/override", json={"mode": "closed"})
    assert status == 200
    closed = await daemon.verdict(await daemon.place("+15550003005", "wait:3"))
    assert (closed["outcome"], closed["reason"]) == ("missed", "after_hours")
    status, _ = await daemon.api("PUT", "/api/v1/lines/override/override", json={"mode": "auto"})
    assert status == 200
    open_again = await daemon.verdict(await daemon.place("+15550003005", "wait:3"))
    assert open_again["outcome"] == "answered"
    await daemon.assert_nothing_left()
