"""ARI models and events as frozen dataclasses, parsed from the JSON Asterisk sends.

Parsing is hand-written on purpose: one dict lookup per field, no validation library and no
reflection per event, because every event of every call passes through here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

Json = Mapping[str, Any]


class MalformedEvent(ValueError):
    """A known event type whose JSON lacks a field or has one of the wrong shape."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"malformed {event_type} event: {reason}")
        self.event_type = event_type
        self.reason = reason


# ------------------------------------------------------------------ models


@dataclass(frozen=True, slots=True)
class CallerId:
    name: str
    number: str


@dataclass(frozen=True, slots=True)
class DialplanCep:
    context: str
    exten: str
    priority: int
    app_name: str
    app_data: str


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str
    caller: CallerId
    connected: CallerId
    dialplan: DialplanCep
    creationtime: datetime
    language: str


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    technology: str
    bridge_type: str
    name: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    technology: str
    resource: str
    state: str | None
    channel_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LiveRecording:
    name: str
    format: str
    state: str
    target_uri: str
    duration: int | None
    cause: str | None


@dataclass(frozen=True, slots=True)
class AsteriskInfo:
    version: str
    entity_id: str
    startup_time: datetime | None


def parse_time(text: str) -> datetime:
    """`2026-11-27T07:26:14.123+0000` -> aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without UTC offset: {text!r}")
    return moment.astimezone(UTC)


# Every event of a channel repeats its caller ids, dialplan location and creation time: building
# those immutable parts once (bounded LRU, C-implemented) halves the cost of parsing a channel.
_SHARED_PARTS = 4096
_caller_id = lru_cache(maxsize=_SHARED_PARTS)(CallerId)
_dialplan_cep = lru_cache(maxsize=_SHARED_PARTS)(DialplanCep)
_creation_time = lru_cache(maxsize=_SHARED_PARTS)(parse_time)


def parse_caller(data: Json) -> CallerId:
    return _caller_id(data["name"], data["number"])


def parse_channel(data: Json) -> Channel:
    plan = data["dialplan"]
    return Channel(
        data["id"],
        data["name"],
        data["state"],
        parse_caller(data["caller"]),
        parse_caller(data["connected"]),
        _dialplan_cep(plan["context"], plan["exten"], plan["priority"], plan["app_name"], plan["app_data"]),
        _creation_time(data["creationtime"]),
        data["language"],
    )


def parse_bridge(data: Json) -> Bridge:
    return Bridge(
        data["id"], data["technology"], data["bridge_type"], data.get("name", ""), tuple(data["channels"])
    )


def parse_playback(data: Json) -> Playback:
    return Playback(data["id"], data["media_uri"], data["target_uri"], data["state"])


def parse_endpoint(data: Json) -> Endpoint:
    return Endpoint(data["technology"], data["resource"], data.get("state"), tuple(data["channel_ids"]))


def parse_recording(data: Json) -> LiveRecording:
    duration = data.get("duration")
    return LiveRecording(
        data["name"],
        data["format"],
        data["state"],
        data["target_uri"],
        None if duration is None else int(duration),
        data.get("cause"),
    )


def parse_asterisk_info(data: Json) -> AsteriskInfo:
    system = data["system"]
    startup = data.get("status", {}).get("startup_time")
    return AsteriskInfo(
        system["version"], system["entity_id"], None if startup is None else parse_time(startup)
    )


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Event:
    """Fields every ARI event carries. The subclass's `type` is the ARI event name."""

    type: ClassVar[str]
    application: str
    timestamp: datetime
    asterisk_id: str | None


@dataclass(frozen=True, slots=True)
class StasisStart(Event):
    type: ClassVar[str] = "StasisStart"
    channel: Channel
    args: tuple[str, ...]
    replace_channel: Channel | None


@dataclass(frozen=True, slots=True)
class StasisEnd(Event):
    type: ClassVar[str] = "StasisEnd"
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelStateChange(Event):
    type: ClassVar[str] = "ChannelStateChange"
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelDestroyed(Event):
    type: ClassVar[str] = "ChannelDestroyed"
    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest(Event):
    """`soft` requests carry cause 32, a soft-hangup flag rather than a Q.850 cause."""

    type: ClassVar[str] = "ChannelHangupRequest"
    channel: Channel
    cause: int | None
    soft: bool


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived(Event):
    type: ClassVar[str] = "ChannelDtmfReceived"
    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Dial(Event):
    """`dialstatus` is '' when dialling starts, then RINGING, ANSWER, BUSY, NOANSWER..."""

    type: ClassVar[str] = "Dial"
    peer: Channel
    caller: Channel | None
    dialstatus: str
    dialstring: str
    forward: str


@dataclass(frozen=True, slots=True)
class PlaybackStarted(Event):
    type: ClassVar[str] = "PlaybackStarted"
    playback: Playback


@dataclass(frozen=True, slots=True)
class PlaybackFinished(Event):
    type: ClassVar[str] = "PlaybackFinished"
    playback: Playback


@dataclass(frozen=True, slots=True)
class ChannelEnteredBridge(Event):
    type: ClassVar[str] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge(Event):
    type: ClassVar[str] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, slots=True)
class BridgeDestroyed(Event):
    type: ClassVar[str] = "BridgeDestroyed"
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class EndpointStateChange(Event):
    type: ClassVar[str] = "EndpointStateChange"
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class DeviceStateChanged(Event):
    """`state`: NOT_INUSE, INUSE, BUSY, RINGING, RINGINUSE, ONHOLD, UNAVAILABLE, INVALID, UNKNOWN."""

    type: ClassVar[str] = "DeviceStateChanged"
    device: str
    state: str


@dataclass(frozen=True, slots=True)
class ChannelUserevent(Event):
    """`channel` is None for an event raised for the application only."""

    type: ClassVar[str] = "ChannelUserevent"
    eventname: str
    channel: Channel | None
    userevent: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChannelVarset(Event):
    """`channel` is None when a global variable was set."""

    type: ClassVar[str] = "ChannelVarset"
    variable: str
    value: str
    channel: Channel | None


@dataclass(frozen=True, slots=True)
class RecordingFinished(Event):
    type: ClassVar[str] = "RecordingFinished"
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class RecordingFailed(Event):
    type: ClassVar[str] = "RecordingFailed"
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class ApplicationReplaced(Event):
    """Another client connected with our app name: this connection gets no more events."""

    type: ClassVar[str] = "ApplicationReplaced"


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type this client does not model (ChannelDialplan, ChannelCallerId...)."""

    type: str
    raw: Json


AriEvent = (
    StasisStart
    | StasisEnd
    | ChannelStateChange
    | ChannelDestroyed
    | ChannelHangupRequest
    | ChannelDtmfReceived
    | Dial
    | PlaybackStarted
    | PlaybackFinished
    | ChannelEnteredBridge
    | ChannelLeftBridge
    | BridgeDestroyed
    | EndpointStateChange
    | DeviceStateChanged
    | ChannelUserevent
    | ChannelVarset
    | RecordingFinished
    | RecordingFailed
    | ApplicationReplaced
    | UnknownEvent
)


def _optional_channel(data: Json | None) -> Channel | None:
    return None if data is None else parse_channel(data)


def _stasis_start(d: Json, app: str, at: datetime, ast: str | None) -> AriEvent:
    return StasisStart(
        app,
        at,
        ast,
        parse_channel(d["channel"]),
        tuple(d["args"]),
        _optional_channel(d.get("replace_channel")),
    )


def _hangup_request(d: Json, app: str, at: datetime, ast: str | None) -> AriEvent:
    cause = d.get("cause")
    return ChannelHangupRequest(
        app, at, ast, parse_channel(d["channel"]), None if cause is None else int(cause), bool(d.get("soft"))
    )


def _dial(d: Json, app: str, at: datetime, ast: str | None) -> AriEvent:
    return Dial(
        app,
        at,
        ast,
        parse_channel(d["peer"]),
        _optional_channel(d.get("caller")),
        d["dialstatus"],
        d.get("dialstring", ""),
        d.get("forward", ""),
    )


_Parser = Callable[[Json, str, datetime, "str | None"], AriEvent]

_PARSERS: dict[str, _Parser] = {
    StasisStart.type: _stasis_start,
    StasisEnd.type: lambda d, app, at, ast: StasisEnd(app, at, ast, parse_channel(d["channel"])),
    ChannelStateChange.type: lambda d, app, at, ast: ChannelStateChange(
        app, at, ast, parse_channel(d["channel"])
    ),
    ChannelDestroyed.type: lambda d, app, at, ast: ChannelDestroyed(
        app, at, ast, parse_channel(d["channel"]), int(d["cause"]), d["cause_txt"]
    ),
    ChannelHangupRequest.type: _hangup_request,
    ChannelDtmfReceived.type: lambda d, app, at, ast: ChannelDtmfReceived(
        app, at, ast, parse_channel(d["channel"]), d["digit"], int(d["duration_ms"])
    ),
    Dial.type: _dial,
    PlaybackStarted.type: lambda d, app, at, ast: PlaybackStarted(
        app, at, ast, parse_playback(d["playback"])
    ),
    PlaybackFinished.type: lambda d, app, at, ast: PlaybackFinished(
        app, at, ast, parse_playback(d["playback"])
    ),
    ChannelEnteredBridge.type: lambda d, app, at, ast: ChannelEnteredBridge(
        app, at, ast, parse_bridge(d["bridge"]), parse_channel(d["channel"])
    ),
    ChannelLeftBridge.type: lambda d, app, at, ast: ChannelLeftBridge(
        app, at, ast, parse_bridge(d["bridge"]), parse_channel(d["channel"])
    ),
    BridgeDestroyed.type: lambda d, app, at, ast: BridgeDestroyed(app, at, ast, parse_bridge(d["bridge"])),
    EndpointStateChange.type: lambda d, app, at, ast: EndpointStateChange(
        app, at, ast, parse_endpoint(d["endpoint"])
    ),
    DeviceStateChanged.type: lambda d, app, at, ast: DeviceStateChanged(
        app, at, ast, str(d["device_state"]["name"]), str(d["device_state"]["state"])
    ),
    ChannelUserevent.type: lambda d, app, at, ast: ChannelUserevent(
        app, at, ast, d["eventname"], _optional_channel(d.get("channel")), dict(d["userevent"])
    ),
    ChannelVarset.type: lambda d, app, at, ast: ChannelVarset(
        app, at, ast, d["variable"], d["value"], _optional_channel(d.get("channel"))
    ),
    RecordingFinished.type: lambda d, app, at, ast: RecordingFinished(
        app, at, ast, parse_recording(d["recording"])
    ),
    RecordingFailed.type: lambda d, app, at, ast: RecordingFailed(
        app, at, ast, parse_recording(d["recording"])
    ),
    ApplicationReplaced.type: lambda d, app, at, ast: ApplicationReplaced(app, at, ast),
}


def parse_event(data: Json) -> AriEvent:
    """One decoded websocket message -> its typed event. Unknown types become UnknownEvent;
    a known type with missing or mistyped fields raises MalformedEvent."""
    try:
        event_type = data["type"]
    except (KeyError, TypeError) as exc:
        raise MalformedEvent("<untyped>", "no 'type' field") from exc
    if not isinstance(event_type, str):
        raise MalformedEvent("<untyped>", f"'type' is {type(event_type).__name__}, not a string")
    parser = _PARSERS.get(event_type)
    if parser is None:
        return UnknownEvent(event_type, data)
    try:
        return parser(data, data["application"], parse_time(data["timestamp"]), data.get("asterisk_id"))
    except KeyError as exc:
        raise MalformedEvent(event_type, f"missing field {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedEvent(event_type, str(exc)) from exc
