"""What the pure call logic asks the asyncio shell to do. Every action names the call it belongs to,
so the shell can run the actions of one call in order and those of different calls concurrently."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from callkeeper.records import CallRecord


class Timer(enum.StrEnum):
    """The timers of a call; a call has at most one of each running."""

    RING = "ring"
    LEGS_GONE = "legs_gone"
    IVR = "ivr"
    PRESS_1 = "press1"
    QUEUE_MAX_WAIT = "queue_max_wait"
    QUEUE_ANNOUNCE = "queue_announce"
    QUEUE_RETRY = "queue_retry"
    VOICEMAIL_RESULT = "voicemail_result"
    PLAYBACK_LOST = "playback_lost"


@dataclass(frozen=True, slots=True)
class Answer:
    call_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class Hangup:
    call_id: str
    channel_id: str
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class Ring:
    """Let the caller hear ringback while users' phones ring."""

    call_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class StopRing:
    call_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class Play:
    call_id: str
    channel_id: str
    media: tuple[str, ...]
    playback_id: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    call_id: str
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartMoh:
    call_id: str
    channel_id: str
    music_class: str


@dataclass(frozen=True, slots=True)
class StopMoh:
    call_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class DialLeg:
    """Create an outgoing channel (a user's phone, an outside number, a voicemail helper) in our
    app under a deterministic id and dial it. `watch_channel_id` asks to also follow the far half
    of a Local channel (its user events carry the voicemail result)."""

    call_id: str
    leg_id: str
    endpoint: str
    caller_number: str
    caller_name: str = ""
    timeout_seconds: int | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    other_id: str | None = None
    watch_other: bool = False


@dataclass(frozen=True, slots=True)
class BridgeChannels:
    """Create the call's mixing bridge (deterministic id) if needed and put the channels in it."""

    call_id: str
    bridge_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    call_id: str
    bridge_id: str


@dataclass(frozen=True, slots=True)
class ContinueInDialplan:
    call_id: str
    channel_id: str
    context: str
    extension: str = "s"
    priority: int = 1


@dataclass(frozen=True, slots=True)
class SetVariable:
    """A channel variable or function, like `CHANNEL(language)`."""

    call_id: str
    channel_id: str
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    call_id: str
    name: Timer
    seconds: float
    token: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    call_id: str
    name: Timer


@dataclass(frozen=True, slots=True)
class SaveRecord:
    call_id: str
    record: CallRecord
    final: bool = False


@dataclass(frozen=True, slots=True)
class Log:
    """A line for the operator's log; the shell adds the call's id, channel and line to it."""

    call_id: str
    line: str | None
    event: str
    level: str = "info"
    fields: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TakeTurn:
    """`user` took a call of the round-robin `group`: the next call rings the one after them. The
    shell keeps it in the store, for a restart and for the other hosts (`inputs.TurnTaken`)."""

    call_id: str
    group: str
    user: str


@dataclass(frozen=True, slots=True)
class Forget:
    """The call is over: the shell drops its per-call queue and timers after this action."""

    call_id: str


Action = (
    Answer
    | Hangup
    | Ring
    | StopRing
    | Play
    | StopPlayback
    | StartMoh
    | StopMoh
    | DialLeg
    | BridgeChannels
    | DestroyBridge
    | ContinueInDialplan
    | SetVariable
    | StartTimer
    | CancelTimer
    | SaveRecord
    | Log
    | TakeTurn
    | Forget
)
