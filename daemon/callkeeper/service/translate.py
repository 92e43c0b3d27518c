"""ARI events boiled down to the inputs of the pure call logic."""

from __future__ import annotations

from callkeeper.ari import events as ari
from callkeeper.calls import inputs as ev

INBOUND = "inbound"
VOICEMAIL_EVENT = "CallkeeperVoicemail"
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
    ari.EndpointStateChange.type,
    ari.ApplicationReplaced.type,
)


def to_inputs(event: ari.AriEvent) -> tuple[ev.Input, ...]:
    if isinstance(event, ari.UnknownEvent):
        return ()
    at = event.timestamp
    match event:
        case ari.StasisStart(channel=channel, args=args) if len(args) >= 2 and args[0] == INBOUND:
            return (ev.CallArrived(channel.id, channel.caller.number, channel.caller.name, args[1], at),)
        case ari.ChannelHangupRequest(channel=channel, soft=True, cause=int(flags)) if (
            flags & SOFTHANGUP_SHUTDOWN
        ):
            return (ev.ChannelHungUp(channel.id, at, observed=False),)
        case (
            ari.ChannelHangupRequest(channel=channel, cause=cause)
            | ari.ChannelDestroyed(channel=channel, cause=cause)
        ):
            return (ev.ChannelHungUp(channel.id, at, cause or 0),)
        case ari.StasisEnd(channel=channel):
            return (ev.ChannelHungUp(channel.id, at),)
        case ari.Dial(peer=peer, dialstatus=status) if status:
            return (ev.LegProgress(peer.id, status, at),)
        case ari.ChannelStateChange(channel=channel) if channel.state == "Up":
            return (ev.LegProgress(channel.id, "ANSWER", at),)
        case ari.ChannelEnteredBridge(bridge=bridge, channel=channel):
            return (ev.ChannelBridged(channel.id, bridge.id, at),)
        case ari.ChannelDtmfReceived(channel=channel, digit=digit):
            return (ev.DtmfReceived(channel.id, digit, at),)
        case ari.PlaybackFinished(playback=playback):
            return (ev.PlaybackDone(playback.id, at),)
        case ari.ChannelUserevent(eventname=name, channel=channel, userevent=fields) if (
            name == VOICEMAIL_EVENT and channel is not None
        ):
            return (
                ev.VoicemailFinished(
                    channel.id, str(fields.get("status", "")), _int(fields.get("seconds")), at
                ),
            )
        case ari.EndpointStateChange(endpoint=endpoint):
            key = f"{endpoint.technology}/{endpoint.resource}"
            return (ev.EndpointStateChanged(key, endpoint.state == "online", at),)
    return ()


def _int(value: object) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return 0
