"""Queues: a ring group's callers wait with music (and hear their position) and are offered,
longest-waiting first, to members as they become free; in fishing mode also to members busy
on another call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import Actions, Call, MissedCalls, Next, OfferQueue, Queued, stay
from callkeeper.calls.journey import Entered, RangOut, RangOutWhy, Stage
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import RingGroup

RETRY_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """A caller waiting in a queue."""

    call_id: str
    caller: str
    since: datetime


def start(call: Call, board: Switchboard, group: RingGroup, at: datetime) -> Next:
    """The caller joins the queue; the engine offers the queue once the call is `Queued`."""
    queue = group.queue
    assert queue is not None
    call.facts.append(Entered(Stage.QUEUE, at, group.name))
    board.enqueue(group.name, call.id)
    out: Actions = [
        *call.end_ringback(),
        *call.answer(),
        act.StartMoh(call.id, call.channel_id, queue.music_class),
        call.timer(Timer.QUEUE_MAX_WAIT, queue.max_wait_seconds),
    ]
    if queue.announce_position_seconds:
        out.append(call.timer(Timer.QUEUE_ANNOUNCE, queue.announce_position_seconds))
    return Next(out, Queued(group, at), OfferQueue(group.name))


def on_event(call: Call, board: Switchboard, queued: Queued, event: ev.Input) -> Next:
    group = queued.group
    queue = group.queue
    assert queue is not None
    match event:
        case ev.TimerFired(name=Timer.QUEUE_MAX_WAIT, at=at):
            board.dequeue(group.name, call.id)
            call.facts.append(RangOut(Stage.QUEUE, RangOutWhy.MAX_WAIT, at))
            out = call.drop_legs(board)
            out.append(act.StopMoh(call.id, call.channel_id))
            if queued.announcing:
                out.append(act.StopPlayback(call.id, queued.announcing))
            out += [call.cancel(Timer.QUEUE_ANNOUNCE), call.cancel(Timer.QUEUE_RETRY)]
            return Next(out, then=MissedCalls())
        case ev.TimerFired(name=Timer.QUEUE_ANNOUNCE):
            position = board.position(group.name, call.id)
            playback_id = call.next_id("position")
            media = ("sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting")
            return Next(
                [
                    act.StopMoh(call.id, call.channel_id),
                    *call.play(media, playback_id),
                    call.timer(Timer.QUEUE_ANNOUNCE, queue.announce_position_seconds or 0),
                ],
                replace(queued, announcing=playback_id),
            )
        case ev.PlaybackDone() | ev.ActionFailed(action=act.Play()) if queued.announcing:
            return Next(
                [act.StartMoh(call.id, call.channel_id, queue.music_class)], replace(queued, announcing=None)
            )
        case ev.TimerFired(name=Timer.QUEUE_RETRY) | ev.TimerFired(name=Timer.RING):
            return Next(call.drop_legs(board), then=OfferQueue(group.name))
    return stay()


def offer(calls: Mapping[str, Call], board: Switchboard, group_name: str) -> Actions:
    """Offer waiting callers, longest-waiting first, to members who are free (and, in fishing
    mode, to members busy on another call)."""
    out: Actions = []
    for call_id in list(board.queues.get(group_name, [])):
        call = calls.get(call_id)
        if call is None or not isinstance(call.stage, Queued) or call.legs:
            continue
        group = call.stage.group
        member = _free_member(call, board, group)
        if member is None:
            continue
        board.offered[member] = call.id
        out += call.dial_user(member, group.ring_seconds, group)
        out.append(call.timer(Timer.RING, group.ring_seconds))
    return out


def _free_member(call: Call, board: Switchboard, group: RingGroup) -> str | None:
    config = call.config
    for layer in range(len(group.layers)):
        for user in board.ring_order(config, group, layer, call.id) or (
            [u for u in group.layers[layer] if board.reachable(config, u)] if group.fishing_mode else []
        ):
            if user not in board.offered:
                return user
    return None


def leave(call: Call, board: Switchboard, queued: Queued) -> Actions:
    """A member answered: the caller leaves the queue and its music."""
    board.dequeue(queued.group.name, call.id)
    out: Actions = [
        act.StopMoh(call.id, call.channel_id),
        call.cancel(Timer.QUEUE_MAX_WAIT),
        call.cancel(Timer.QUEUE_ANNOUNCE),
        call.cancel(Timer.QUEUE_RETRY),
    ]
    if queued.announcing:
        out.append(act.StopPlayback(call.id, queued.announcing))
    return out


def waiters(calls: Mapping[str, Call], board: Switchboard) -> dict[str, list[Waiting]]:
    waiting: dict[str, list[Waiting]] = {}
    for group, call_ids in board.queues.items():
        for call_id in call_ids:
            call = calls.get(call_id)
            if call is not None and isinstance(call.stage, Queued):
                waiting.setdefault(group, []).append(Waiting(call_id, call.caller, call.stage.since))
    return waiting
