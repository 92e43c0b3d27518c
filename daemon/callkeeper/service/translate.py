"""ARI events boiled down to the inputs of the pure call logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callkeeper.ari import events as ari
from callkeeper.ari.wsrest import RESPONSE_TYPE
from callkeeper.calls import inputs as ev

INBOUND = "inbound"
VOICEMAIL_EVENT = "CallkeeperVoicemail"
HANDOFF_EVENT = "CallkeeperHandoff"
# The soft-hangup flag of every channel Asterisk takes down as it shuts down (AST_SOFTHANGUP_SHUTDOWN):
# nobody hung up, the call was cut off.
SOFTHANGUP_SHUTDOWN = 1 << 2

# What `to_inputs` reads, and ApplicationReplaced for the connection. The daemon asks Asterisk for
# these only: ChannelVarset, ChannelDialplan, caller-id events and the like, over half of a call's
# stream (bench/replay.py), are then neither serialized nor sent nor parsed.
WANTED_EVENTS = (
    ari.StasisStart.type,
    ari.StasisEnd.type,
    ari.ChannelHangupRequest.type,
    ari.ChannelDestroyed.type,
    ari.Dial.type,
    ari.ChannelStateChange.type,
    ari.ChannelEnteredBridge.type,
    ari.ChannelDtmfReceived.type,
    ari.PlaybackFinished.type,
    ari.ChannelUserevent.type,
    ari.DeviceStateChanged.type,
    ari.ApplicationReplaced.type,
    RESPONSE_TYPE,  # the answers to REST requests sent over the event socket
)


Inputs = tuple[ev.Input, ...]


def to_inputs(event: ari.AriEvent) -> Inputs:
    translate = _TRANSLATE.get(type(event))
    return () if translate is None else translate(event)


def _stasis_start(event: ari.StasisStart) -> Inputs:
    args, channel = event.args, event.channel
    if len(args) >= 2 and args[0] == INBOUND:
        caller = channel.caller
        return (ev.CallArrived(channel.id, caller.number, caller.name, args[1], event.timestamp),)
    return ()


def _hangup_request(event: ari.ChannelHangupRequest) -> Inputs:
    cause = event.cause
    if event.soft and cause is not None and cause & SOFTHANGUP_SHUTDOWN:
        return (ev.ChannelHungUp(event.channel.id, event.timestamp, observed=False),)
    return (ev.ChannelHungUp(event.channel.id, event.timestamp, cause or 0),)


def _destroyed(event: ari.ChannelDestroyed) -> Inputs:
    return (ev.ChannelHungUp(event.channel.id, event.timestamp, event.cause or 0),)


def _stasis_end(event: ari.StasisEnd) -> Inputs:
    return (ev.LeftApp(event.channel.id, event.timestamp),)


def _dial(event: ari.Dial) -> Inputs:
    status = event.dialstatus
    if not status:
        return ()
    progress = ev.LegProgress(event.peer.id, status, event.timestamp)
    if status == "ANSWER" and event.caller is not None:
        # The dialplan of a handed-off caller (a queue, a Dial()) put them through.
        peer = event.peer.name.rpartition("-")[0] or event.peer.name
        return (progress, ev.CallerConnected(event.caller.id, peer, event.timestamp))
    return (progress,)


def _state_change(event: ari.ChannelStateChange) -> Inputs:
    channel = event.channel
    return (ev.LegProgress(channel.id, "ANSWER", event.timestamp),) if channel.state == "Up" else ()


def _entered_bridge(event: ari.ChannelEnteredBridge) -> Inputs:
    return (ev.ChannelBridged(event.channel.id, event.bridge.id, event.timestamp),)


def _dtmf(event: ari.ChannelDtmfReceived) -> Inputs:
    return (ev.DtmfReceived(event.channel.id, event.digit, event.timestamp),)


def _playback_finished(event: ari.PlaybackFinished) -> Inputs:
    return (ev.PlaybackDone(event.playback.id, event.timestamp),)


def _userevent(event: ari.ChannelUserevent) -> Inputs:
    channel, fields = event.channel, event.userevent
    if channel is None:
        return ()
    if event.eventname == HANDOFF_EVENT:
        return (
            ev.HandoffEnded(
                channel.id,
                str(fields.get("queuestatus", "")),
                str(fields.get("abandoned", "")).upper() == "TRUE",
                str(fields.get("dialstatus", "")),
                str(fields.get("vmstatus", "")),
                event.timestamp,
            ),
        )
    if event.eventname != VOICEMAIL_EVENT:
        return ()
    status, seconds = str(fields.get("status", "")), _int(fields.get("seconds"))
    return (ev.VoicemailFinished(channel.id, status, seconds, event.timestamp),)


# A phone in these states is on a call (anyone's): not free to ring.
BUSY_DEVICE_STATES = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})
# chan_pjsip's device state of an endpoint that is offline (no reachable contact), or unknown to it.
OFFLINE_DEVICE_STATES = frozenset({"UNAVAILABLE", "INVALID"})


def _device_state(event: ari.DeviceStateChanged) -> Inputs:
    state = event.state
    return (
        ev.DeviceStateChanged(
            event.device, state in BUSY_DEVICE_STATES, state not in OFFLINE_DEVICE_STATES, event.timestamp
        ),
    )


# One lookup per event instead of a match over every event type; the other types give no input.
_TRANSLATE: dict[type, Callable[[Any], Inputs]] = {
    ari.StasisStart: _stasis_start,
    ari.ChannelHangupRequest: _hangup_request,
    ari.ChannelDestroyed: _destroyed,
    ari.StasisEnd: _stasis_end,
    ari.Dial: _dial,
    ari.ChannelStateChange: _state_change,
    ari.ChannelEnteredBridge: _entered_bridge,
    ari.ChannelDtmfReceived: _dtmf,
    ari.PlaybackFinished: _playback_finished,
    ari.ChannelUserevent: _userevent,
    ari.DeviceStateChanged: _device_state,
}


def _int(value: object) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return 0
