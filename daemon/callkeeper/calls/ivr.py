"""IVR: the menu prompt, the caller's digit, retries, and where each choice goes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import Actions, Call, GoTo, Menu, Next, go, stay
from callkeeper.calls.journey import DigitPressed, Entered, Stage
from callkeeper.config.model import Ivr


def start(call: Call, ivr: Ivr, attempt: int, at: datetime) -> Next:
    if attempt == 1:
        call.facts.append(Entered(Stage.IVR, at, ivr.name))
    playback_id = call.next_id("ivr")
    return Next(
        [call.cancel(Timer.IVR), *call.play((ivr.prompt,), playback_id)], Menu(ivr, attempt, playback_id)
    )


def on_event(call: Call, menu: Menu, event: ev.Input) -> Next:
    ivr = menu.ivr
    match event:
        case ev.PlaybackDone() | ev.ActionFailed(action=act.Play()):
            return Next([call.timer(Timer.IVR, ivr.timeout_seconds)], replace(menu, playback_id=None))
        case ev.DtmfReceived(digit=digit, at=at):
            call.facts.append(DigitPressed(digit, at))
            out: Actions = [call.cancel(Timer.IVR)]
            if menu.playback_id:
                out.append(call.stop_playback(menu.playback_id))
            chosen = ivr.options.get(digit)
            if chosen is not None:
                return Next(out, then=GoTo(chosen))
            if menu.attempt >= ivr.attempts:
                return Next(out, then=go(ivr.invalid or ivr.no_input))
            playback_id = call.next_id("ivr")
            out += call.play((ivr.invalid_prompt, ivr.prompt), playback_id)
            return Next(out, Menu(ivr, menu.attempt + 1, playback_id))
        case ev.TimerFired(name=Timer.IVR, at=at):
            if menu.attempt >= ivr.attempts:
                return Next([], then=go(ivr.no_input))
            return start(call, ivr, menu.attempt + 1, at)
    return stay()
