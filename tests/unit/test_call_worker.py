"""A call's worker runs its actions in order, the hangups of several legs at once."""

from __future__ import annotations

import asyncio
from typing import cast

from callkeeper.calls import actions as act
from callkeeper.service.call_runner import CallService, CallWorker
from callkeeper.service.tasks import Tasks


class SlowAri:
    """Stands in for the service: each action takes a round trip; records when each starts and ends."""

    def __init__(self) -> None:
        self.tasks = Tasks()
        self.workers: dict[str, CallWorker] = {}
        self.log: list[str] = []

    async def execute(self, action: act.Action) -> None:
        name = type(action).__name__ + ":" + getattr(action, "channel_id", "")
        self.log.append("start " + name)
        await asyncio.sleep(0.01)
        self.log.append("end " + name)


async def test_the_losing_legs_are_hung_up_at_once_and_the_next_action_waits_for_them() -> None:
    ari = SlowAri()
    worker = CallWorker(cast(CallService, ari), "c1")
    for action in (
        act.Answer("c1", "c1"),
        act.Hangup("c1", "leg-1", "answered_elsewhere"),
        act.Hangup("c1", "leg-2", "answered_elsewhere"),
        act.BridgeChannels("c1", "b1", ("c1", "leg-3")),
        act.Forget("c1"),
    ):
        worker.push(action)
    await asyncio.wait_for(worker.task, 5)

    assert ari.log == [
        "start Answer:c1",
        "end Answer:c1",
        "start Hangup:leg-1",
        "start Hangup:leg-2",
        "end Hangup:leg-1",
        "end Hangup:leg-2",
        "start BridgeChannels:",
        "end BridgeChannels:",
    ]
