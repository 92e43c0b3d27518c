"""The legs every ringing feature dials: a leg answers (the caller is put through), enters the
call's bridge, fails or hangs up; and the ring time running out. Shared by ring groups, queues,
personal lines, outside numbers and the dialer's contact; the engine's router calls these."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls import queue
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import (
    LEG_FAILURES,
    Actions,
    AttemptOver,
    Call,
    Connecting,
    HangUp,
    InVoicemail,
    Leg,
    MissedCalls,
    Next,
    Queued,
    Ringing,
    Talking,
    stay,
)
from callkeeper.calls.journey import Answered, RangOut, RangOutWhy, Stage
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import Strategy

# After the ring time the legs still ringing are hung up and the attempt ends when Asterisk says they
# are gone, so that a caller who hung up first (by Asterisk's clock) is seen to have done so. This
# long at most if Asterisk never says so: their dials' own timeouts end them anyway, so only a
# wedged Asterisk gets here (an overloaded one took up to 30 s, bench/README.md).
LEGS_GONE_WAIT_SECONDS = 60.0


def on_ringing(call: Call, ringing: Ringing, event: ev.Input) -> Next:
    match event:
        case ev.TimerFired(name=Timer.RING) if call.legs:
            out: Actions = [act.Hangup(call.id, leg.id) for leg in call.legs.values()]
            out.append(call.timer(Timer.LEGS_GONE, LEGS_GONE_WAIT_SECONDS))
            return Next(out, replace(ringing, ending=True))
        case ev.TimerFired(name=Timer.LEGS_GONE):
            log = act.Log(
                call.id, call.line.name, "ringing_legs_not_gone", "warning", {"legs": len(call.legs)}
            )
            return Next([log], then=AttemptOver(ringing))
        case ev.TimerFired(name=Timer.RING):
            return Next([], then=AttemptOver(ringing))
    return stay()


def on_leg(call: Call, board: Switchboard, leg: Leg, event: ev.Input) -> Next:
    match event:
        case ev.LegProgress(status="ANSWER"):
            return _answered(call, board, leg)
        case ev.LegProgress(status=status, at=at) if status in LEG_FAILURES:
            gone = _gone(call, board, leg, at)
            return Next([act.Hangup(call.id, leg.id), *gone.actions], gone.stage, gone.then)
        case ev.ChannelHungUp(at=at) | ev.ActionFailed(action=act.DialLeg(), at=at):
            return _gone(call, board, leg, at)
    return stay()


def _answered(call: Call, board: Switchboard, leg: Leg) -> Next:
    if leg.answered:
        return stay()
    leg.answered = True
    stage = call.stage
    if isinstance(stage, InVoicemail) and leg.id == stage.leg_id:
        call.bridged = True
        return Next([act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, leg.id))])
    if not isinstance(stage, Ringing | Queued) or (isinstance(stage, Ringing) and stage.ending):
        return Next([act.Hangup(call.id, leg.id)])
    out: Actions = [call.cancel(Timer.RING)]
    lost = [o for o in call.legs.values() if o.id != leg.id]
    for other in lost:
        call.forget_leg(other, board)
    if isinstance(stage, Queued):
        out += queue.leave(call, board, stage)
    else:
        out += call.end_ringback()
    group = stage.group
    board.offered.pop(leg.user, None)
    if leg.user in call.config.users:
        board.talking[leg.user] = call.id
        if group is not None:
            board.last_taker[group.name] = leg.user
            if group.strategy is Strategy.ROUND_ROBIN:
                out.append(act.TakeTurn(call.id, group.name, leg.user))
    call.bridged = True
    # The caller's answer first: one call's actions run in order, and each hangup before it made
    # the caller wait a round trip longer for their 200 OK (bench/README.md, SIP load). Their phones
    # keep the call out of their missed list ("Call completed elsewhere").
    out += [
        *call.answer(),
        *(act.Hangup(call.id, other.id, "answered_elsewhere") for other in lost),
        act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, leg.id)),
    ]
    return Next(out, Connecting(leg.id, leg.user, stage))


def bridged(call: Call, connecting: Connecting, event: ev.ChannelBridged) -> Next:
    """Answered means the caller and the user are in one bridge, not merely that the user's
    phone answered: on a loaded PBX a caller can hang up in between."""
    if event.bridge_id != call.bridge_id:
        return stay()
    entered = connecting.entered | {event.channel_id}
    if not {call.channel_id, connecting.leg_id} <= entered:
        return Next([], replace(connecting, entered=entered))
    call.answered_by = call.answered_by or connecting.by
    call.facts.append(Answered(connecting.by, event.at))
    log = act.Log(call.id, call.line.name, "call_answered", "info", {"by": connecting.by})
    return Next([log], Talking(connecting.leg_id, connecting.by))


def _gone(call: Call, board: Switchboard, leg: Leg, at: datetime) -> Next:
    call.forget_leg(leg, board)
    stage = call.stage
    match stage:
        case Talking(leg_id=leg_id) if leg_id == leg.id:
            return Next([], then=HangUp("user_hung_up"))
        case Connecting(leg_id=leg_id, by=by, was=was) if leg_id == leg.id:
            # The user hung up before the caller was put through: the caller must not be lost.
            if board.talking.get(by) == call.id:
                del board.talking[by]
            if isinstance(was, Ringing):
                return Next([], then=AttemptOver(replace(was, pending=(), ending=False)))
            call.facts.append(RangOut(Stage.QUEUE, RangOutWhy.NO_ANSWER, at))
            return Next([], then=MissedCalls())
        case InVoicemail(leg_id=leg_id) if leg_id == leg.id:
            return Next([], then=HangUp("voicemail_done"))
        case Ringing() if not call.legs:
            return Next([], then=AttemptOver(stage))
        case Queued() if not call.legs:
            board.offered.pop(leg.user, None)
            return Next([call.cancel(Timer.RING), call.timer(Timer.QUEUE_RETRY, queue.RETRY_SECONDS)])
    return stay()
