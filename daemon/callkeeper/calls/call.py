"""A call in progress: where it is (its stage), its legs and timers, and the helpers that turn a
change of it into actions. Every feature module (ivr, ring_group, queue, ...) works on these; a
feature's handler returns a `Next`: the call's next stage, the actions, and, when the call moves on
to what another feature does, a transition that the engine's router carries out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.journey import CallerHungUp, Fact, Stage, step_of, where
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import Config, Destination, Ivr, Line, RingGroup
from callkeeper.records import CallRecord, Direction, VoicemailResult

BRIDGE_PREFIX = "callkeeper-"
PLAYBACK = "playback"  # in the `extra` of a record in progress: what the caller hears
LEG_FAILURES = frozenset({"BUSY", "CONGESTION", "CHANUNAVAIL", "NOANSWER", "CANCEL", "DONTCALL", "TORTURE"})

Actions = list[act.Action]


# ---------------------------------------------------------------- stages


@dataclass(frozen=True, slots=True)
class Arriving:
    stage = Stage.ARRIVED


@dataclass(frozen=True, slots=True)
class Welcome:
    playback_id: str
    stage = Stage.WELCOME


@dataclass(frozen=True, slots=True)
class Menu:
    ivr: Ivr
    attempt: int
    playback_id: str | None
    stage = Stage.IVR


@dataclass(frozen=True, slots=True)
class Ringing:
    """A ring group layer, a personal line or an outside number is ringing.

    `pending` are the members still to try one after another in this layer (sequential,
    round robin, random), or a personal line's backup number."""

    stage: Stage
    group: RingGroup | None
    layer: int
    pending: tuple[str, ...]
    fishing: bool = False
    ending: bool = False  # the ring time ran out; waiting for the legs to be gone


@dataclass(frozen=True, slots=True)
class Queued:
    group: RingGroup
    since: datetime
    announcing: str | None = None
    stage = Stage.QUEUE


@dataclass(frozen=True, slots=True)
class PressOne:
    playback_id: str | None
    stage = Stage.PRESS_1


@dataclass(frozen=True, slots=True)
class InVoicemail:
    leg_id: str
    mailbox: str
    stage = Stage.VOICEMAIL


@dataclass(frozen=True, slots=True)
class Connecting:
    """A user answered; the caller counts as answered once both are in the call's bridge. Until
    then the call is still where it was (`was`), for a caller who hangs up in between."""

    leg_id: str
    by: str
    was: Ringing | Queued
    entered: frozenset[str] = frozenset()

    @property
    def stage(self) -> Stage:
        return self.was.stage


@dataclass(frozen=True, slots=True)
class Talking:
    leg_id: str
    by: str
    stage = Stage.TALKING


@dataclass(frozen=True, slots=True)
class DialingUser:
    """Progressive dialer: the user's phone rings first; the contact is called once they answer."""

    user: str
    stage = Stage.DIALER_USER


@dataclass(frozen=True, slots=True)
class HandedOff:
    """The caller continues in the PBX's own dialplan; we only watch how it ends."""

    target: str
    stage = Stage.DIALPLAN


@dataclass(frozen=True, slots=True)
class Closing:
    """The caller is gone; waiting only for the voicemail result before the verdict."""

    stage = Stage.ENDED


CallStage = (
    Arriving
    | Welcome
    | Menu
    | Ringing
    | Queued
    | PressOne
    | InVoicemail
    | Connecting
    | Talking
    | DialingUser
    | HandedOff
    | Closing
)


def playback_of(stage: CallStage) -> str | None:
    """What the caller hears from us in this stage, if anything."""
    match stage:
        case Welcome(playback_id=playing) | Menu(playback_id=playing) | PressOne(playback_id=playing):
            return playing
        case Queued(announcing=playing):
            return playing
    return None


def fishing(stage: Ringing | Queued) -> bool:
    return stage.fishing if isinstance(stage, Ringing) else stage.group.fishing_mode


# ---------------------------------------------------------------- transitions


@dataclass(frozen=True, slots=True)
class GoTo:
    """On to a destination (an IVR, a ring group, a user, a line, ...)."""

    destination: Destination


@dataclass(frozen=True, slots=True)
class MissedCalls:
    """Nobody took the call: the line's missed-call handling."""


@dataclass(frozen=True, slots=True)
class HangUp:
    """Hang the caller up, the call over for `why`."""

    why: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The call is over: its verdict."""


@dataclass(frozen=True, slots=True)
class StartLine:
    """From the start of the call's line (business hours, welcome, route)."""


@dataclass(frozen=True, slots=True)
class EnterQueue:
    group: RingGroup


@dataclass(frozen=True, slots=True)
class OfferQueue:
    """Offer the callers waiting in this ring group's queue to free members."""

    group: str


@dataclass(frozen=True, slots=True)
class AttemptOver:
    """Nobody answered this ringing attempt (its ring time ran out or every leg failed)."""

    ringing: Ringing


@dataclass(frozen=True, slots=True)
class RingBackup:
    """A personal line's user did not answer: ring their backup number."""

    number: str


Transition = (
    GoTo | MissedCalls | HangUp | Finish | StartLine | EnterQueue | OfferQueue | AttemptOver | RingBackup
)


def go(destination: Destination | None) -> Transition:
    """To the destination if there is one, else to the missed-call handling."""
    return GoTo(destination) if destination else MissedCalls()


@dataclass(frozen=True, slots=True)
class Next:
    """What a handler decided: the actions, the call's next stage (None: it stays), and where the
    call goes on (None: it stays with this feature)."""

    actions: Actions
    stage: CallStage | None = None
    then: Transition | None = None


def stay() -> Next:
    return Next([])


# ---------------------------------------------------------------- the call


@dataclass(slots=True)
class Routes:
    """Which call every followed channel and playback belongs to (one for all calls of an engine)."""

    channels: dict[str, str] = field(default_factory=dict)
    playbacks: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Leg:
    """An outgoing channel of a call: `user` is the user's name, `external:+1...` or `voicemail`."""

    id: str
    user: str
    answered: bool = False


@dataclass(slots=True)
class Call:
    id: str
    config: Config
    routes: Routes
    line: Line
    origin: Line
    caller: str
    caller_name: str
    dialed: str
    channel_id: str
    started_at: datetime
    direction: Direction = Direction.INBOUND
    # Only once the caller must hear us (audio, a bridge): while users ring the caller hears
    # ringing unanswered, as with Dial(), and the trunk does not bill it.
    caller_answered: bool = False
    stage: CallStage = field(default_factory=Arriving)
    facts: list[Fact] = field(default_factory=list)
    legs: dict[str, Leg] = field(default_factory=dict)
    timers: dict[Timer, int] = field(default_factory=dict)
    seq: int = 0
    missed_handlings: int = 0
    transfers: int = 0
    voicemail: VoicemailResult | None = None
    voicemail_pending: bool = False
    answered_by: str | None = None
    bridged: bool = False
    saved_facts: int = -1
    saved_playback: str | None = None
    end_observed: bool = True
    followed: set[str] = field(default_factory=set)
    # The user whose personal line rang last: its missed call goes to their own mailbox.
    personal_line_of: str | None = None

    def next_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.id}-{kind}-{self.seq}"

    @property
    def bridge_id(self) -> str:
        return f"{BRIDGE_PREFIX}{self.id}"

    def follow(self, channel_id: str) -> None:
        self.routes.channels[channel_id] = self.id
        self.followed.add(channel_id)

    def answer(self) -> Actions:
        if self.caller_answered:
            return []
        self.caller_answered = True
        return [act.Answer(self.id, self.channel_id)]

    def end_ringback(self) -> Actions:
        """Asterisk plays ringback to a caller already answered, until told to stop. An unanswered
        caller's ringing ends with their answer: a round trip less before their 200 OK."""
        return [act.StopRing(self.id, self.channel_id)] if self.caller_answered else []

    def ringback(self) -> Actions:
        """The caller hears ringing; asked for after the dials, which are what the users wait for."""
        return [] if self.direction is Direction.OUTBOUND else [act.Ring(self.id, self.channel_id)]

    def play(self, media: tuple[str, ...], playback_id: str) -> Actions:
        self.routes.playbacks[playback_id] = self.id
        self.followed.add(playback_id)
        return [*self.answer(), act.Play(self.id, self.channel_id, media, playback_id)]

    def stop_playback(self, playback_id: str) -> act.StopPlayback:
        self.routes.playbacks.pop(playback_id, None)
        return act.StopPlayback(self.id, playback_id)

    def timer(self, name: Timer, seconds: float) -> act.StartTimer:
        self.seq += 1
        self.timers[name] = self.seq
        return act.StartTimer(self.id, name, seconds, self.seq)

    def cancel(self, name: Timer) -> act.CancelTimer:
        self.timers.pop(name, None)
        return act.CancelTimer(self.id, name)

    def dial(self, who: str, endpoint: str, ring_seconds: int, caller_name: str | None = None) -> Actions:
        leg = Leg(self.next_id("leg"), who)
        self.legs[leg.id] = leg
        self.follow(leg.id)
        name = self.caller_name if caller_name is None else caller_name
        return [act.DialLeg(self.id, leg.id, endpoint, self.caller, name, timeout_seconds=ring_seconds)]

    def dial_user(self, user: str, ring_seconds: int, group: RingGroup | None = None) -> Actions:
        """The user's phone shows the caller's number and name, the name after the ring group's
        `cid_name_prefix` (else the line's), so whoever answers knows which number was called."""
        prefix = self.line.cid_name_prefix
        if group is not None and group.cid_name_prefix is not None:
            prefix = group.cid_name_prefix
        name = f"{prefix}{self.caller_name or self.caller}" if prefix else self.caller_name
        return self.dial(user, self.config.users[user].endpoint, ring_seconds, name)

    def dial_external(self, number: str, ring_seconds: int) -> Actions:
        template = self.config.asterisk.outbound_dial or "PJSIP/{number}"
        out = self.dial(f"external:{number}", template.format(number=number), ring_seconds)
        return [*out, *self.ringback(), self.timer(Timer.RING, ring_seconds)]

    def record(self, host: str) -> CallRecord:
        """The call's record as it stands."""
        return CallRecord(
            id=self.id,
            direction=self.direction,
            line=self.origin.name,
            caller=self.caller,
            dialed=self.dialed,
            started_at=self.started_at,
            answered_by=self.answered_by,
            voicemail=self.voicemail,
            steps=tuple(step_of(f) for f in self.facts),
            host=host,
            extra={PLAYBACK: playback} if (playback := playback_of(self.stage)) else {},
        )

    def forget_leg(self, leg: Leg, board: Switchboard) -> None:
        self.legs.pop(leg.id, None)
        if board.offered.get(leg.user) == self.id:
            del board.offered[leg.user]
        self.routes.channels.pop(leg.id, None)

    def drop_legs(self, board: Switchboard) -> Actions:
        out: Actions = []
        for leg in list(self.legs.values()):
            out.append(act.Hangup(self.id, leg.id))
            self.forget_leg(leg, board)
        return out


def inbound_call(
    config: Config, routes: Routes, line: Line, event: ev.CallArrived | ev.CallAdopted, started_at: datetime
) -> Call:
    """The call of a caller in our app (the caller's channel id is the call's id)."""
    return Call(
        id=event.channel_id,
        config=config,
        routes=routes,
        line=line,
        origin=line,
        caller=event.caller,
        caller_name=event.caller_name,
        dialed=event.dialed,
        channel_id=event.channel_id,
        started_at=started_at,
    )


def hangup_where(config: Config, facts: list[Fact], at: datetime) -> CallerHungUp:
    """The caller's hangup where a journey known only from its facts stopped."""
    stage, detail = where(facts)
    group = config.ring_groups.get(detail) if stage in (Stage.RING_GROUP, Stage.QUEUE) else None
    return CallerHungUp(stage, at, group is not None and group.fishing_mode)
