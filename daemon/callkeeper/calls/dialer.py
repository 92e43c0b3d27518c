"""The progressive dialer: the user's phone rings first; once they answer, the contact is called
from the line's number and the two are bridged."""

from __future__ import annotations

from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import (
    LEG_FAILURES,
    Actions,
    Call,
    DialingUser,
    Finish,
    HangUp,
    Next,
    Ringing,
    Routes,
    stay,
)
from callkeeper.calls.journey import Entered, RangOut, RangOutWhy, Stage
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import Config
from callkeeper.records import Direction


def free_user(config: Config, board: Switchboard, user: str | None, ring_group: str | None) -> str | None:
    """Who the dialer would reach first: the user if free, else the group's first free member."""
    if user is not None:
        return user if board.available(config, user) else None
    group = config.ring_groups.get(ring_group or "")
    if group is None:
        return None
    for layer in range(len(group.layers)):
        for member in board.ring_order(config, group, layer, ring_group or ""):
            if member not in board.offered:
                return member
    return None


def new_call(config: Config, routes: Routes, event: ev.DialerRequested) -> Call:
    line = config.lines[event.line]
    return Call(
        id=event.call_id,
        config=config,
        routes=routes,
        line=line,
        origin=line,
        caller=line.numbers[0],
        caller_name="",
        dialed=event.contact,
        channel_id=f"{event.call_id}-user",
        started_at=event.at,
        direction=Direction.OUTBOUND,
        caller_answered=True,  # the user's phone, dialed by us
    )


def start(call: Call, board: Switchboard, event: ev.DialerRequested) -> Next:
    user = free_user(call.config, board, event.user, event.ring_group)
    if user is None:
        call.facts.append(RangOut(Stage.DIALER_USER, RangOutWhy.NO_AGENTS, event.at))
        return Next([], then=Finish())
    call.facts.append(Entered(Stage.DIALER_USER, event.at, user))
    board.offered[user] = call.id
    ring_seconds = call.config.users[user].ring_seconds
    out: Actions = [
        act.Log(call.id, call.line.name, "dialer_started", "info", {"contact": call.dialed, "user": user}),
        act.DialLeg(
            call.id,
            call.channel_id,
            call.config.users[user].endpoint,
            call.dialed,
            timeout_seconds=ring_seconds,
        ),
        call.timer(Timer.RING, ring_seconds),
    ]
    return Next(out, DialingUser(user))


def on_event(call: Call, board: Switchboard, dialing: DialingUser, event: ev.Input) -> Next:
    match event:
        case ev.LegProgress(status="ANSWER", at=at):
            board.offered.pop(dialing.user, None)
            board.talking[dialing.user] = call.id
            call.answered_by = dialing.user
            call.facts.append(Entered(Stage.DIALER_CONTACT, at, call.dialed))
            out = [
                call.cancel(Timer.RING),
                *call.dial_external(call.dialed, call.config.external_ring_seconds),
            ]
            return Next(out, Ringing(Stage.DIALER_CONTACT, None, 0, ()))
        case ev.LegProgress(status=status, at=at) if status in LEG_FAILURES:
            return _not_answered(call, at)
        case ev.TimerFired(name=Timer.RING, at=at) | ev.ActionFailed(action=act.DialLeg(), at=at):
            return _not_answered(call, at)
    return stay()


def _not_answered(call: Call, at: datetime) -> Next:
    call.facts.append(RangOut(Stage.DIALER_USER, RangOutWhy.NO_ANSWER, at))
    return Next([], then=HangUp("user_did_not_answer"))
