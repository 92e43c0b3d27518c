"""Hand-off to the PBX's own dialplan (destination `dialplan:CONTEXT,EXTEN[,PRIORITY]`), such as a
FreePBX queue: the caller continues there and we keep watching the channel for the verdict.

Answered once someone the dialplan rang answers (a queue member, a dialled phone: Asterisk puts
them through). Otherwise, when the caller hangs up, by what the dialplan's applications left on
the channel (dialplan/callkeeper.conf reports them): QUEUESTATUS TIMEOUT is the queue's max wait,
FULL, JOINEMPTY, LEAVEEMPTY, JOINUNAVAIL, LEAVEUNAVAIL nobody available, ABANDONED a caller who hung
up in the queue; DIALSTATUS CANCEL a caller who hung up while phones rang, NOANSWER nobody answered,
BUSY, CHANUNAVAIL, CONGESTION nobody available; any VMSTATUS voicemail. Queue first, then dial,
then voicemail (a queue that times out into voicemail is the queue's max wait). None of them: the
caller left during the dialplan's announcements (abandoned, as during a welcome).
"""

from __future__ import annotations

from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import Call, Finish, HandedOff, Next, stay
from callkeeper.calls.journey import Answered, CallerHungUp, Entered, Fact, RangOut, RangOutWhy, Stage

# The report comes from the channel's hangup handler right after its hangup: this long at most.
RESULT_WAIT_SECONDS = 3.0
_QUEUE_NOBODY = frozenset({"FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"})
_DIAL_NOBODY = frozenset({"BUSY", "CHANUNAVAIL", "CONGESTION"})


def start(call: Call, target: str, at: datetime) -> Next:
    context, extension, priority = (*target.split(","), "1")[:3]
    call.facts.append(Entered(Stage.DIALPLAN, at, target))
    out: list[act.Action] = [act.HandOff(call.id, call.channel_id, context, extension, int(priority))]
    return Next(out, HandedOff(target))


def on_event(call: Call, event: ev.Input) -> Next:
    match event:
        case ev.CallerConnected(peer=peer, at=at) if call.answered_by is None:
            user = next((u.name for u in call.config.users.values() if u.endpoint == peer), peer)
            call.answered_by = user
            call.facts.append(Answered(user, at))
            return Next([act.Log(call.id, call.line.name, "call_answered", "info", {"by": user})])
        case ev.HandoffEnded(at=at) if call.answered_by is None:
            call.facts += _ending(event, at)
            return Next([], then=Finish())
        case ev.HandoffEnded():
            return Next([], then=Finish())
        case ev.ChannelHungUp() if Timer.HANDOFF_RESULT not in call.timers:
            return Next([call.timer(Timer.HANDOFF_RESULT, RESULT_WAIT_SECONDS)])
        case ev.TimerFired(name=Timer.HANDOFF_RESULT, token=token, at=at) if (
            call.timers.get(Timer.HANDOFF_RESULT) == token
        ):
            if call.answered_by is None:
                call.facts.append(CallerHungUp(Stage.DIALPLAN, at))
            return Next([], then=Finish())
    return stay()


def _ending(report: ev.HandoffEnded, at: datetime) -> list[Fact]:
    if report.queue_status == "TIMEOUT":
        return [Entered(Stage.QUEUE, at), RangOut(Stage.QUEUE, RangOutWhy.MAX_WAIT, at)]
    if report.queue_status in _QUEUE_NOBODY:
        return [Entered(Stage.QUEUE, at), RangOut(Stage.QUEUE, RangOutWhy.NO_AGENTS, at)]
    if report.abandoned:
        return [Entered(Stage.QUEUE, at), CallerHungUp(Stage.QUEUE, at)]
    if report.dial_status == "CANCEL":
        return [Entered(Stage.RING_GROUP, at), CallerHungUp(Stage.RING_GROUP, at)]
    if report.dial_status == "NOANSWER":
        return [Entered(Stage.RING_GROUP, at), RangOut(Stage.RING_GROUP, RangOutWhy.NO_ANSWER, at)]
    if report.dial_status in _DIAL_NOBODY:
        return [Entered(Stage.RING_GROUP, at), RangOut(Stage.RING_GROUP, RangOutWhy.NO_AGENTS, at)]
    if report.voicemail_status:
        return [Entered(Stage.VOICEMAIL, at, report.voicemail_status)]
    return [CallerHungUp(Stage.DIALPLAN, at)]
