"""Ring groups: layers rung one after another, each by the group's strategy (ring all at once,
or one member at a time: sequential, round robin, random); a group with a queue queues the caller
once every layer is done."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import Actions, Call, EnterQueue, MissedCalls, Next, Ringing
from callkeeper.calls.journey import Entered, RangOut, RangOutWhy, Stage
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import RingGroup, Strategy


def start(call: Call, board: Switchboard, group: RingGroup, at: datetime) -> Next:
    call.facts.append(Entered(Stage.RING_GROUP, at, group.name))
    return _next_layer(call, board, group, 0, at, first=True)


def next_attempt(call: Call, board: Switchboard, ringing: Ringing, group: RingGroup, at: datetime) -> Next:
    """Nobody answered: the next member of a one-at-a-time layer, else the next layer."""
    pending = [u for u in ringing.pending if board.available(call.config, u, group)]
    if pending:
        out = call.dial_user(pending[0], group.ring_seconds, group)
        out.append(call.timer(Timer.RING, group.ring_seconds))
        return Next(out, replace(ringing, pending=tuple(pending[1:]), ending=False))
    return _next_layer(call, board, group, ringing.layer + 1, at, first=False)


def _next_layer(
    call: Call, board: Switchboard, group: RingGroup, layer: int, at: datetime, *, first: bool
) -> Next:
    for index in range(layer, len(group.layers)):
        order = board.ring_order(call.config, group, index, call.id)
        if order:
            return _ring_layer(call, group, index, order)
    if group.queue is not None:
        return Next([], then=EnterQueue(group))
    why = RangOutWhy.NO_AGENTS if first else RangOutWhy.NO_ANSWER
    call.facts.append(RangOut(Stage.RING_GROUP, why, at))
    return Next([act.StopRing(call.id, call.channel_id)], then=MissedCalls())


def _ring_layer(call: Call, group: RingGroup, layer: int, order: list[str]) -> Next:
    ring_all = group.strategy is Strategy.RING_ALL
    now, pending = (order, ()) if ring_all else (order[:1], tuple(order[1:]))
    out: Actions = []
    for user in now:
        out += call.dial_user(user, group.ring_seconds, group)
    out += [*call.ringback(), call.timer(Timer.RING, group.ring_seconds)]
    return Next(out, Ringing(Stage.RING_GROUP, group, layer, pending, group.fishing_mode))
