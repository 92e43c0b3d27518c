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
    Connecting,
    DialingUser,
    Finish,
    HangUp,
    Leg,
    Next,
    Ringing,
    Routes,
    Talking,
    stay,
)
from callkeeper.calls.journey import Answered, Entered, RangOut, RangOutWhy, Stage, facts_from_steps, where
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import Config, Line
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


def user_channel_id(call_id: str) -> str:
    """The channel the dialer rings the user's phone on: the call's caller, as it were."""
    return f"{call_id}-user"


def new_call(config: Config, routes: Routes, event: ev.DialerRequested) -> Call:
    line = config.lines[event.line]
    return _outbound_call(
        config,
        routes,
        line,
        event.call_id,
        caller=line.numbers[0],
        contact=event.contact,
        started_at=event.at,
    )


def _outbound_call(
    config: Config,
    routes: Routes,
    line: Line,
    call_id: str,
    *,
    caller: str,
    contact: str,
    started_at: datetime,
) -> Call:
    return Call(
        id=call_id,
        config=config,
        routes=routes,
        line=line,
        origin=line,
        caller=caller,
        caller_name="",
        dialed=contact,
        channel_id=user_channel_id(call_id),
        started_at=started_at,
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
            return _user_answered(call, board, dialing.user, at)
        case ev.LegProgress(status=status, at=at) if status in LEG_FAILURES:
            return _not_answered(call, at)
        case ev.TimerFired(name=Timer.RING, at=at) | ev.ActionFailed(action=act.DialLeg(), at=at):
            return _not_answered(call, at)
    return stay()


def _user_answered(call: Call, board: Switchboard, user: str, at: datetime) -> Next:
    board.offered.pop(user, None)
    board.talking[user] = call.id
    call.answered_by = user
    call.facts.append(Entered(Stage.DIALER_CONTACT, at, call.dialed))
    out = [call.cancel(Timer.RING), *call.dial_external(call.dialed, call.config.external_ring_seconds)]
    return Next(out, Ringing(Stage.DIALER_CONTACT, None, 0, ()))


def adopted_call(config: Config, routes: Routes, line: Line, event: ev.DialerCallAdopted) -> Call:
    """The dialer's call again after a restart, from the user's channel and its open record."""
    record = event.record
    call = _outbound_call(
        config,
        routes,
        line,
        event.call_id,
        caller=record.caller,
        contact=record.dialed,
        started_at=record.started_at,
    )
    call.facts = facts_from_steps(record.steps)
    call.answered_by = record.answered_by
    call.bridged = event.user.bridge == call.bridge_id
    # New ids must not meet the old ones that Asterisk may still hold (`<call id>-leg-N`).
    call.seq = max(
        (int(n) for leg in event.legs if (n := leg.channel_id.rpartition("-")[2]).isdigit()), default=0
    )
    call.facts.append(Entered(Stage.ADOPTED, event.at, where(call.facts)[0].value))
    call.follow(call.channel_id)
    return call


def resume(call: Call, board: Switchboard, event: ev.DialerCallAdopted) -> Next:
    """Go on from where the dialer's call stopped: the user's phone still ringing, the contact
    ringing, or the two talking; what ended while no daemon ran ends the call."""
    stage, detail = where(call.facts)
    out: Actions = [act.Log(call.id, call.line.name, "call_adopted", "warning", {"stage": stage.value})]
    contact = next((leg for leg in event.legs if leg.up), None) or next(iter(event.legs), None)
    out += [act.Hangup(call.id, leg.channel_id) for leg in event.legs if leg is not contact]
    if stage is Stage.DIALER_USER and detail in call.config.users:
        if event.user.up:  # the user answered while no daemon ran
            step = _user_answered(call, board, detail, event.at)
            return Next(out + step.actions, step.stage)
        board.offered[detail] = call.id
        ring_seconds = call.config.users[detail].ring_seconds
        return Next([*out, call.timer(Timer.RING, ring_seconds)], DialingUser(detail))
    user = call.answered_by or ""
    if stage not in (Stage.DIALER_CONTACT, Stage.TALKING) or not event.user.up or contact is None:
        if stage is Stage.DIALER_CONTACT:
            call.facts.append(RangOut(Stage.DIALER_CONTACT, RangOutWhy.NO_ANSWER, event.at))
        return Next(out, then=HangUp("ended_while_unattended"))
    if user in call.config.users:
        board.talking[user] = call.id
    by = f"external:{call.dialed}"
    call.legs[contact.channel_id] = Leg(contact.channel_id, by, answered=contact.up)
    call.follow(contact.channel_id)
    ringing = Ringing(Stage.DIALER_CONTACT, None, 0, ())
    if not contact.up:
        return Next([*out, call.timer(Timer.RING, call.config.external_ring_seconds)], ringing)
    entered = frozenset(
        channel
        for channel, bridge in ((call.channel_id, event.user.bridge), (contact.channel_id, contact.bridge))
        if bridge == call.bridge_id
    )
    if len(entered) == 2:
        if not any(isinstance(fact, Answered) for fact in call.facts):
            call.facts.append(Answered(by, event.at))
        return Next(out, Talking(contact.channel_id, by))
    call.bridged = True
    out.append(act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, contact.channel_id)))
    return Next(out, Connecting(contact.channel_id, by, ringing, entered))


def _not_answered(call: Call, at: datetime) -> Next:
    call.facts.append(RangOut(Stage.DIALER_USER, RangOutWhy.NO_ANSWER, at))
    return Next([], then=HangUp("user_did_not_answer"))
