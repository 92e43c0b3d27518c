"""After a restart: a caller waits in our app and no call follows it (the daemon before us died).
The call goes on from its stored journey: talking or voicemail while a leg of ours serves the
caller, hung up if that service ended meanwhile, otherwise routed again from where it was. And the
open records of calls that ended while no daemon watched."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.call import (
    PLAYBACK,
    Actions,
    Call,
    EnterQueue,
    GoTo,
    HangUp,
    InVoicemail,
    Leg,
    MissedCalls,
    Next,
    RingBackup,
    Routes,
    StartLine,
    Talking,
    Transition,
    hangup_where,
    inbound_call,
)
from callkeeper.calls.journey import Answered, Entered, Stage, classify, facts_from_steps, where
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import Config, Destination, DestinationKind, Line
from callkeeper.records import CallRecord


def new_call(config: Config, routes: Routes, event: ev.CallAdopted, origin: Line) -> Call:
    """The call again, from its caller's channel and its open record."""
    record = event.record
    call = inbound_call(config, routes, origin, event, record.started_at if record else event.at)
    call.caller_answered = event.answered
    call.bridged = event.bridge == call.bridge_id
    if record is not None:
        call.facts = facts_from_steps(record.steps)
        call.answered_by, call.voicemail = record.answered_by, record.voicemail
        lines = [f.detail for f in call.facts if isinstance(f, Entered) and f.stage is Stage.LINE]
        call.line = config.lines.get(lines[-1], origin) if lines else origin
    # New ids must not meet the old ones that Asterisk may still hold.
    call.seq = max(
        _serial(call.id, known) for known in (_playback(event), *(g.channel_id for g in event.legs))
    )
    call.facts.append(Entered(Stage.ADOPTED, event.at, where(call.facts)[0].value))
    call.follow(call.channel_id)
    return call


def resume(call: Call, board: Switchboard, event: ev.CallAdopted) -> Next:
    stage, detail = where(call.facts)
    out: Actions = [act.Log(call.id, call.line.name, "call_adopted", "warning", {"stage": stage.value})]
    if playback := _playback(event):
        out.append(act.StopPlayback(call.id, playback))
    serving = _serving_leg(event)
    out += [act.Hangup(call.id, leg.channel_id) for leg in event.legs if leg is not serving]
    if serving is None:
        return Next(out, then=_resume_unattended(call, stage, detail))
    if serving.channel_id.startswith(f"{call.id}-vm-"):
        call.legs[serving.channel_id] = Leg(serving.channel_id, "voicemail", answered=True)
        call.follow(serving.channel_id)
        call.follow(f"{serving.channel_id}-far")
        call.voicemail_pending = True
        mailbox = detail if stage is Stage.VOICEMAIL else ""
        return Next(out, InVoicemail(serving.channel_id, mailbox or call.line.mailbox))
    return _resume_talking(call, board, out, serving, stage=stage, at=event.at)


def _resume_unattended(call: Call, stage: Stage, detail: str) -> Transition:
    """An adopted caller nobody serves: on from the stage the journey stopped in."""
    config = call.config
    match stage:
        case Stage.TALKING | Stage.VOICEMAIL | Stage.DEAD_END:
            return HangUp("ended_while_unattended")
        case Stage.WELCOME:
            return GoTo(call.line.route)
        case Stage.IVR if detail in config.ivrs:
            return GoTo(Destination(DestinationKind.IVR, detail))
        case Stage.RING_GROUP if detail in config.ring_groups:
            return GoTo(Destination(DestinationKind.RING_GROUP, detail))
        case Stage.QUEUE if detail in config.ring_groups and config.ring_groups[detail].queue:
            return EnterQueue(config.ring_groups[detail])
        case Stage.PERSONAL_LINE if detail in config.users:
            return GoTo(Destination(DestinationKind.USER, detail))
        case Stage.PERSONAL_LINE if detail.startswith("backup "):
            return RingBackup(detail.removeprefix("backup "))
        case Stage.EXTERNAL:
            return GoTo(Destination(DestinationKind.EXTERNAL, detail))
        case Stage.MISSED_CALL_HANDLING | Stage.PRESS_1:
            return MissedCalls()
    return StartLine()


def _resume_talking(
    call: Call, board: Switchboard, out: Actions, serving: ev.AdoptedLeg, *, stage: Stage, at: datetime
) -> Next:
    by = call.answered_by or next(
        (u.name for u in call.config.users.values() if serving.name.startswith(f"{u.endpoint}-")),
        serving.name,
    )
    call.legs[serving.channel_id] = Leg(serving.channel_id, by, answered=True)
    call.follow(serving.channel_id)
    talking = Talking(serving.channel_id, by)
    if by in call.config.users:
        board.talking[by] = call.id
    if not any(isinstance(f, Answered) for f in call.facts):
        call.answered_by = by
        call.facts.append(Answered(by, at))
    if serving.bridge is not None:
        return Next(out, talking)
    # A user answered while no daemon ran: connect them now.
    call.bridged = True
    out.append(
        act.StopMoh(call.id, call.channel_id)
        if stage is Stage.QUEUE
        else act.StopRing(call.id, call.channel_id)
    )
    out += [
        *call.answer(),
        act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, serving.channel_id)),
    ]
    return Next(out, talking)


def close_unobserved(config: Config, record: CallRecord, at: datetime) -> Actions:
    """The open record of a call that ended while no daemon watched (this one was down or cut
    off): the caller is taken to have left where the journey stopped."""
    facts = facts_from_steps(record.steps)
    hangup = hangup_where(config, facts, at)
    facts.append(hangup)
    line = config.lines.get(record.line or "")
    verdict = classify(facts, record.started_at, at, line.short_abandon_seconds if line else 0)
    final = replace(
        record,
        ended_at=at,
        outcome=verdict.outcome,
        reason=verdict.reason,
        short=verdict.short,
        end_observed=False,
        extra={k: v for k, v in record.extra.items() if k != PLAYBACK},
    )
    log = act.Log(
        record.id,
        record.line,
        "call_end_not_observed",
        "warning",
        {"stage": hangup.stage.value, "reason": verdict.reason.value},
    )
    return [act.SaveRecord(record.id, final, final=True), log]


def _playback(event: ev.CallAdopted) -> str:
    return str(event.record.extra.get(PLAYBACK, "")) if event.record else ""


def _serving_leg(event: ev.CallAdopted) -> ev.AdoptedLeg | None:
    """The leg the caller is bridged with, or else a user's that answered while no daemon ran."""
    up = [leg for leg in event.legs if leg.up]
    bridged = [leg for leg in up if event.bridge is not None and leg.bridge == event.bridge]
    answered = [leg for leg in up if leg.bridge is None and f"{event.channel_id}-leg-" in leg.channel_id]
    return next(iter(bridged or answered), None)


def _serial(call_id: str, item_id: str) -> int:
    """The N of an id a call gave out (`<call_id>-leg-N`, `<call_id>-vm-N-far`, ...); 0 otherwise."""
    parts = item_id.removeprefix(f"{call_id}-").split("-")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
