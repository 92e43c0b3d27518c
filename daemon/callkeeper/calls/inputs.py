"""What the pure call logic reacts to: ARI events boiled down to telephony facts, timers, the
results of failed actions, and presence changes. Each carries the moment it happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callkeeper.calls.actions import Action, Timer
from callkeeper.calls.hours import Override
from callkeeper.records import CallRecord


@dataclass(frozen=True, slots=True)
class CallArrived:
    channel_id: str
    caller: str
    caller_name: str
    dialed: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DialerRequested:
    """Progressive dialer: reach `user` (or the first free member of `ring_group`), then call `contact`
    from `line` and bridge them."""

    call_id: str
    line: str
    contact: str
    user: str | None
    ring_group: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ChannelHungUp:
    """A channel we follow is gone (hangup request, destroyed, or left our app); not `observed`
    when Asterisk took it down as it shut down, or a reconnect found the caller missing."""

    channel_id: str
    at: datetime
    cause: int = 0
    observed: bool = True


@dataclass(frozen=True, slots=True)
class LegProgress:
    """Dial progress of an outgoing leg: RINGING, ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, ..."""

    channel_id: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChannelBridged:
    """A channel we follow entered a bridge."""

    channel_id: str
    bridge_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    channel_id: str
    digit: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    playback_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TimerFired:
    call_id: str
    name: Timer
    token: int
    at: datetime


@dataclass(frozen=True, slots=True)
class ActionFailed:
    """An ARI request of this call failed (`gone` when Asterisk answered 404: the channel is gone;
    `unanswered` when no answer came, timed out or cut off: Asterisk may still carry it out)."""

    call_id: str
    action: Action
    target: str
    gone: bool
    message: str
    at: datetime
    unanswered: bool = False


@dataclass(frozen=True, slots=True)
class VoicemailFinished:
    """app_voicemail finished in the far half of a voicemail leg (`status` is VMSTATUS)."""

    channel_id: str
    status: str
    seconds: int
    at: datetime


@dataclass(frozen=True, slots=True)
class EndpointStateChanged:
    """An endpoint's state in the snapshot taken at each connect (`GET /endpoints`), which settles
    what its device state said while the daemon was away; the changes come as DeviceStateChanged."""

    endpoint: str
    online: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class LeftApp:
    """A channel left our Stasis app: hung up, or handed to the dialplan."""

    channel_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CallerConnected:
    """The dialplan a caller was handed to put them through (a queue member or a dialled phone
    answered): `peer` is the answering channel's endpoint, like PJSIP/alice."""

    channel_id: str
    peer: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HandoffEnded:
    """A handed-off caller hung up; what the dialplan's applications left on the channel."""

    channel_id: str
    queue_status: str
    abandoned: bool
    dial_status: str
    voicemail_status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeviceStateChanged:
    """Asterisk's state of a user's device (`PJSIP/alice`): `busy` while it is in use, ringing or
    on hold, whoever's call it is; not `online` while the phone is unregistered or unreachable."""

    device: str
    busy: bool
    online: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A user set away, or do-not-disturb (at the desk, taking no calls); neither: available."""

    user: str
    away: bool
    at: datetime
    dnd: bool = False


@dataclass(frozen=True, slots=True)
class TurnTaken:
    """`user` took the last call of the round-robin `group`, as the store says (after a restart, or
    on another host)."""

    group: str
    user: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LineOverrideChanged:
    line: str
    mode: Override
    at: datetime


@dataclass(frozen=True, slots=True)
class StopAccepting:
    """The daemon is stopping: calls that arrive from now on are handed back to the dialplan."""

    at: datetime


@dataclass(frozen=True, slots=True)
class AdoptedLeg:
    """A channel of our app dialed for the call (`name` is Asterisk's, e.g. `PJSIP/alice-0000002a`);
    `bridge` is the bridge it is in."""

    channel_id: str
    name: str
    up: bool
    bridge: str | None


@dataclass(frozen=True, slots=True)
class CallAdopted:
    """After a (re)connect: a caller in our app that no call follows (a daemon before us died);
    `record` is its open record, if one was stored, and `legs` what it had dialed."""

    channel_id: str
    caller: str
    caller_name: str
    dialed: str
    answered: bool
    bridge: str | None
    legs: tuple[AdoptedLeg, ...]
    record: CallRecord | None
    at: datetime


@dataclass(frozen=True, slots=True)
class DialerCallAdopted:
    """After a (re)connect: the user's channel of a progressive-dialer call in our app that no call
    follows (a daemon before us died), its open record, and the contact's leg if one was dialed."""

    call_id: str
    user: AdoptedLeg
    legs: tuple[AdoptedLeg, ...]
    record: CallRecord
    at: datetime


Input = (
    CallArrived
    | DialerRequested
    | ChannelHungUp
    | LegProgress
    | ChannelBridged
    | DtmfReceived
    | PlaybackDone
    | TimerFired
    | ActionFailed
    | VoicemailFinished
    | LeftApp
    | CallerConnected
    | HandoffEnded
    | EndpointStateChanged
    | DeviceStateChanged
    | PresenceChanged
    | LineOverrideChanged
    | TurnTaken
    | StopAccepting
    | CallAdopted
    | DialerCallAdopted
)
