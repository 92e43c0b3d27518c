"""Missed-call handling: voicemail, asked for first with "press 1" if the line wants, or
another destination; and the voicemail's result."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import (
    Actions,
    Call,
    Closing,
    Finish,
    GoTo,
    HangUp,
    InVoicemail,
    Leg,
    Next,
    PressOne,
    stay,
)
from callkeeper.calls.journey import DigitPressed, Entered, Stage
from callkeeper.config.model import DestinationKind
from callkeeper.records import VoicemailResult

CONTEXT = "callkeeper-voicemail"
MAX_MISSED_CALL_HANDLINGS = 3


def missed_call_handling(call: Call, at: datetime) -> Next:
    handling = call.line.missed_calls
    call.missed_handlings += 1
    if call.missed_handlings > MAX_MISSED_CALL_HANDLINGS:
        return Next([], then=HangUp("missed_call_handling_loop"))
    call.facts.append(Entered(Stage.MISSED_CALL_HANDLING, at, str(handling.action)))
    if handling.action.kind is not DestinationKind.VOICEMAIL:
        return Next([], then=GoTo(handling.action))
    if handling.press_1_for_voicemail:
        playback_id = call.next_id("press1")
        call.facts.append(Entered(Stage.PRESS_1, at, handling.press_1_prompt))
        return Next(call.play((handling.press_1_prompt,), playback_id), PressOne(playback_id))
    return start(call, at)


def start(call: Call, at: datetime) -> Next:
    owner = call.config.users.get(call.personal_line_of or "")
    mailbox = owner.mailbox if owner is not None and owner.mailbox else call.line.mailbox
    leg = Leg(call.next_id("vm"), "voicemail")
    call.legs[leg.id] = leg
    other_id = f"{leg.id}-far"
    call.follow(leg.id)
    call.follow(other_id)
    call.voicemail_pending = True
    call.facts.append(Entered(Stage.VOICEMAIL, at, mailbox))
    dial = act.DialLeg(
        call.id,
        leg.id,
        f"Local/s@{CONTEXT}",
        call.caller,
        call.caller_name,
        variables={
            "CALLKEEPER_MAILBOX": mailbox,
            "CALLKEEPER_CALL_ID": call.id,
            "CALLKEEPER_CALLER": call.caller,
            "CALLKEEPER_CALLER_NAME": call.caller_name,
        },
        other_id=other_id,
        watch_other=True,
    )
    return Next([*call.answer(), dial], InVoicemail(leg.id, mailbox))


def on_press_one(call: Call, press: PressOne, event: ev.Input) -> Next:
    handling = call.line.missed_calls
    match event:
        case ev.PlaybackDone() | ev.ActionFailed(action=act.Play()):
            return Next(
                [call.timer(Timer.PRESS_1, handling.press_1_timeout_seconds)],
                replace(press, playback_id=None),
            )
        case ev.DtmfReceived(digit="1", at=at):
            call.facts.append(DigitPressed("1", at))
            stop: Actions = [call.cancel(Timer.PRESS_1)]
            if press.playback_id:
                stop.append(act.StopPlayback(call.id, press.playback_id))
            voicemail = start(call, at)
            return Next([*stop, *voicemail.actions], voicemail.stage)
        case ev.DtmfReceived(digit=digit, at=at):
            call.facts.append(DigitPressed(digit, at))
            return Next([], then=HangUp("press_1_declined"))
        case ev.TimerFired(name=Timer.PRESS_1):
            return Next([], then=HangUp("press_1_timeout"))
    return stay()


def finished(call: Call, status: str, seconds: int) -> Next:
    call.voicemail_pending = False
    mailbox = call.stage.mailbox if isinstance(call.stage, InVoicemail) else call.line.mailbox
    call.voicemail = VoicemailResult(
        left=status == "SUCCESS" and seconds > 0, seconds=seconds, mailbox=mailbox
    )
    return Next([], then=Finish()) if isinstance(call.stage, Closing) else stay()
