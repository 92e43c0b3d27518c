"""The pure call logic: every input becomes the next state of the calls it touches and the actions
the shell must carry out. No I/O and no clock: time comes in with the inputs.

A call moves through stages (welcome, IVR, ring group, queue, personal line, outside number,
press-1, voicemail, talking); each stage object holds what that stage needs and each handler
returns the actions of the transition. The verdict is left to `journey.classify`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.hours import is_open
from callkeeper.calls.journey import (
    Answered,
    CallerHungUp,
    DigitPressed,
    Entered,
    Fact,
    RangOut,
    RangOutWhy,
    Stage,
    classify,
)
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import (
    Config,
    Destination,
    DestinationKind,
    Ivr,
    Line,
    RingGroup,
    UnknownNumberAction,
)
from callkeeper.records import (
    CallRecord,
    Direction,
    Outcome,
    Reason,
    Step,
    VoicemailResult,
)

VOICEMAIL_CONTEXT = "callkeeper-voicemail"
EXTERNAL_RING_SECONDS = 30
PERSONAL_RING_SECONDS = 20
QUEUE_RETRY_SECONDS = 3.0
VOICEMAIL_RESULT_WAIT_SECONDS = 3.0
# After the ring time the legs still ringing are hung up and the attempt ends when Asterisk says they
# are gone, so that a caller who hung up first (by Asterisk's clock) is seen to have done so. This
# long at most if Asterisk never says so: their dials' own timeouts end them anyway, so only a
# wedged Asterisk gets here (an overloaded one took up to 30 s, bench/README.md).
LEGS_GONE_WAIT_SECONDS = 60.0
PLAYBACK_LOST_SECONDS = 20.0
MAX_MISSED_CALL_HANDLINGS = 3
BRIDGE_PREFIX = "callkeeper-"
PLAYBACK = "playback"  # in the `extra` of a record in progress: what the caller hears
LEG_FAILURES = frozenset({"BUSY", "CONGESTION", "CHANUNAVAIL", "NOANSWER", "CANCEL", "DONTCALL", "TORTURE"})


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
    round robin, random); `then` is what happens when nobody answers."""

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
    | Closing
)


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
    timers: dict[str, int] = field(default_factory=dict)
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

    def next_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.id}-{kind}-{self.seq}"

    @property
    def bridge_id(self) -> str:
        return f"{BRIDGE_PREFIX}{self.id}"


Actions = list[act.Action]


class Engine:
    """All calls of one daemon. `handle` is called for every input, in arrival order."""

    def __init__(self, config: Config, host: str = "") -> None:
        self.config = config
        self.host = host
        self.calls: dict[str, Call] = {}
        self.channels: dict[str, str] = {}
        self.playbacks: dict[str, str] = {}
        self.board = Switchboard()
        self.accepting = True

    # ------------------------------------------------------------ entry points

    def handle(self, event: ev.Input) -> Actions:
        match event:
            case ev.CallArrived():
                return self._arrive(event)
            case ev.DialerRequested():
                return self._dial_out(event)
            case ev.EndpointStateChanged(endpoint=endpoint, online=online):
                changed = (endpoint in self.board.offline_endpoints) == online
                (self.board.offline_endpoints.discard if online else self.board.offline_endpoints.add)(
                    endpoint
                )
                return self._dispatch_queues(event.at) if changed and online else []
            case ev.PresenceChanged(user=user, away=away):
                (self.board.away.add if away else self.board.away.discard)(user)
                return [] if away else self._dispatch_queues(event.at)
            case ev.LineOverrideChanged(line=line, mode=mode):
                if mode == "auto":
                    self.board.line_overrides.pop(line, None)
                else:
                    self.board.line_overrides[line] = mode
                return []
            case ev.CallAdopted():
                return self._adopt(event)
            case ev.TimerFired(call_id=call_id) | ev.ActionFailed(call_id=call_id):
                call = self.calls.get(call_id)
            case ev.PlaybackDone(playback_id=playback_id):
                call = self.calls.get(self.playbacks.pop(playback_id, ""))
            case (
                ev.ChannelHungUp(channel_id=cid)
                | ev.LegProgress(channel_id=cid)
                | ev.ChannelBridged(channel_id=cid)
                | ev.DtmfReceived(channel_id=cid)
                | ev.VoicemailFinished(channel_id=cid)
            ):
                call = self.calls.get(self.channels.get(cid, ""))
            case _:
                return []
        if call is None:
            return []
        if isinstance(event, ev.ChannelHungUp) and not event.observed:
            # Asterisk went away: the call is cut off where it was, whichever channel went first.
            call.end_observed = False
            return self._with_progress(call, self._caller_left(call, event.at))
        out = self._on_call_event(call, event)
        return self._with_progress(call, out)

    def fail_call(self, call_id: str, at: datetime, error: str) -> Actions:
        """An unexpected error while handling this call: never strand the caller."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        out: Actions = [act.Log(call.id, call.line.name, "call_failed", "error", {"error": error})]
        out += self._drop_legs(call)
        treatment = call.config.unknown_number
        if treatment.action is UnknownNumberAction.DIALPLAN and call.direction is Direction.INBOUND:
            out.append(act.ContinueInDialplan(call.id, call.channel_id, treatment.context, call.dialed))
            self.channels.pop(call.channel_id, None)
        else:
            out.append(act.Hangup(call.id, call.channel_id, treatment.hangup_cause))
        return out + self._finish(call, at)

    def reload(self, config: Config) -> None:
        """New calls use `config`; calls in progress keep the one they started with."""
        self.config = config

    # ------------------------------------------------------------ arrival

    def _arrive(self, event: ev.CallArrived) -> Actions:
        call_id = event.channel_id
        if call_id in self.calls:
            return []
        line = self.config.line_for_number(event.dialed)
        if line is None or not self.accepting:
            return self._not_taken(event, line)
        call = Call(
            id=call_id,
            config=self.config,
            line=line,
            origin=line,
            caller=event.caller,
            caller_name=event.caller_name,
            dialed=event.dialed,
            channel_id=event.channel_id,
            started_at=event.at,
        )
        self.calls[call_id] = call
        self._follow(call, call.channel_id)
        out: Actions = [
            act.Log(
                call_id, line.name, "call_arrived", "info", {"caller": call.caller, "dialed": call.dialed}
            ),
        ]
        out += self._start_line(call, event.at)
        return self._with_progress(call, out)

    def _not_taken(self, event: ev.CallArrived, line: Line | None) -> Actions:
        """A number no line owns, or a daemon that is shutting down: hand the call back."""
        treatment = self.config.unknown_number
        call_id = event.channel_id
        if line is not None:
            log = act.Log(
                call_id, line.name, "not_accepting_calls", "warning", {"context": treatment.context}
            )
            return [
                log,
                act.ContinueInDialplan(call_id, event.channel_id, treatment.context, event.dialed),
                act.Forget(call_id),
            ]
        record = CallRecord(
            id=call_id,
            direction=Direction.INBOUND,
            line=None,
            caller=event.caller,
            dialed=event.dialed,
            started_at=event.at,
            ended_at=event.at,
            outcome=Outcome.IGNORED,
            reason=Reason.UNKNOWN_NUMBER,
            host=self.host,
        )
        out: Actions = [
            act.Log(
                call_id,
                None,
                "unknown_number",
                "warning",
                {"dialed": event.dialed, "treatment": treatment.action.value},
            )
        ]
        if treatment.action is UnknownNumberAction.DIALPLAN:
            out.append(act.ContinueInDialplan(call_id, event.channel_id, treatment.context, event.dialed))
        else:
            out.append(act.Hangup(call_id, event.channel_id, treatment.hangup_cause))
        return [*out, act.SaveRecord(call_id, record, final=True), act.Forget(call_id)]

    def _start_line(self, call: Call, at: datetime) -> Actions:
        line = call.line
        override = self.board.line_overrides.get(line.name, "auto")
        if not is_open(line, at, override):  # type: ignore[arg-type]
            call.facts.append(Entered(Stage.AFTER_HOURS, at, line.name))
            return self._enter(call, line.after_hours, at)
        if line.welcome:
            playback_id = call.next_id("welcome")
            call.stage = Welcome(playback_id)
            call.facts.append(Entered(Stage.WELCOME, at, line.welcome))
            return self._play(call, (line.welcome,), playback_id)
        return self._enter(call, line.route, at)

    # ------------------------------------------------------------ progressive dialer

    def free_user(self, user: str | None, ring_group: str | None) -> str | None:
        """Who the dialer would reach first: the user if free, else the group's first free member."""
        config = self.config
        if user is not None:
            return user if self.board.available(config, user) else None
        group = config.ring_groups.get(ring_group or "")
        if group is None:
            return None
        for layer in range(len(group.layers)):
            for member in self.board.ring_order(config, group, layer, ring_group or ""):
                if member not in self.board.offered:
                    return member
        return None

    def _dial_out(self, event: ev.DialerRequested) -> Actions:
        if event.call_id in self.calls:
            return []
        line = self.config.lines[event.line]
        call = Call(
            id=event.call_id,
            config=self.config,
            line=line,
            origin=line,
            caller=line.numbers[0],
            caller_name="",
            dialed=event.contact,
            channel_id=f"{event.call_id}-user",
            started_at=event.at,
            direction=Direction.OUTBOUND,
            caller_answered=True,  # the user's phone, dialed by us
        )
        self.calls[call.id] = call
        self._follow(call, call.channel_id)
        user = self.free_user(event.user, event.ring_group)
        if user is None:
            call.facts.append(RangOut(Stage.DIALER_USER, RangOutWhy.NO_AGENTS, event.at))
            return self._with_progress(call, self._finish(call, event.at))
        call.facts.append(Entered(Stage.DIALER_USER, event.at, user))
        call.stage = DialingUser(user)
        self.board.offered[user] = call.id
        ring_seconds = PERSONAL_RING_SECONDS
        out: Actions = [
            act.Log(call.id, line.name, "dialer_started", "info", {"contact": call.dialed, "user": user}),
            act.DialLeg(
                call.id,
                call.channel_id,
                self.config.users[user].endpoint,
                call.dialed,
                timeout_seconds=ring_seconds,
            ),
            self._timer(call, "ring", ring_seconds),
        ]
        return self._with_progress(call, out)

    def _dialing_user_event(self, call: Call, dialing: DialingUser, event: ev.Input) -> Actions:
        match event:
            case ev.LegProgress(status="ANSWER", at=at):
                self.board.offered.pop(dialing.user, None)
                self.board.talking[dialing.user] = call.id
                call.answered_by = dialing.user
                call.facts.append(Entered(Stage.DIALER_CONTACT, at, call.dialed))
                call.stage = Ringing(Stage.DIALER_CONTACT, None, 0, ())
                return [
                    self._cancel(call, "ring"),
                    *self._dial_external(call, call.dialed, EXTERNAL_RING_SECONDS),
                ]
            case ev.LegProgress(status=status, at=at) if status in LEG_FAILURES:
                call.facts.append(RangOut(Stage.DIALER_USER, RangOutWhy.NO_ANSWER, at))
                return self._hang_up_caller(call, at, "user_did_not_answer")
            case ev.TimerFired(name="ring", at=at) | ev.ActionFailed(action="DialLeg", at=at):
                call.facts.append(RangOut(Stage.DIALER_USER, RangOutWhy.NO_ANSWER, at))
                return self._hang_up_caller(call, at, "user_did_not_answer")
        return []

    # ------------------------------------------------------------ destinations

    def _enter(self, call: Call, dest: Destination, at: datetime) -> Actions:
        config = call.config
        match dest.kind:
            case DestinationKind.IVR:
                return self._start_menu(call, config.ivrs[str(dest.target)], 1, at)
            case DestinationKind.RING_GROUP:
                return self._start_ring_group(call, config.ring_groups[str(dest.target)], at)
            case DestinationKind.USER:
                return self._start_personal_line(call, str(dest.target), at)
            case DestinationKind.LINE:
                call.transfers += 1
                if call.transfers > len(config.lines):
                    return self._hang_up_caller(call, at, "line_loop")
                call.line = config.lines[str(dest.target)]
                call.facts.append(Entered(Stage.LINE, at, call.line.name))
                return self._start_line(call, at)
            case DestinationKind.EXTERNAL:
                return self._start_external(call, str(dest.target), at)
            case DestinationKind.VOICEMAIL:
                return self._missed_call_handling(call, at)
            case DestinationKind.DEAD_END:
                call.facts.append(Entered(Stage.DEAD_END, at))
                return self._hang_up_caller(call, at, "dead_end")

    def _missed_call_handling(self, call: Call, at: datetime) -> Actions:
        handling = call.line.missed_calls
        call.missed_handlings += 1
        if call.missed_handlings > MAX_MISSED_CALL_HANDLINGS:
            return self._hang_up_caller(call, at, "missed_call_handling_loop")
        call.facts.append(Entered(Stage.MISSED_CALL_HANDLING, at, str(handling.action)))
        if handling.action.kind is not DestinationKind.VOICEMAIL:
            return self._enter(call, handling.action, at)
        if handling.press_1_for_voicemail:
            playback_id = call.next_id("press1")
            call.stage = PressOne(playback_id)
            call.facts.append(Entered(Stage.PRESS_1, at, handling.press_1_prompt))
            return self._play(call, (handling.press_1_prompt,), playback_id)
        return self._start_voicemail(call, at)

    def _start_voicemail(self, call: Call, at: datetime) -> Actions:
        mailbox = call.line.mailbox
        leg = Leg(call.next_id("vm"), "voicemail")
        call.legs[leg.id] = leg
        other_id = f"{leg.id}-far"
        self._follow(call, leg.id)
        self._follow(call, other_id)
        call.stage = InVoicemail(leg.id, mailbox)
        call.voicemail_pending = True
        call.facts.append(Entered(Stage.VOICEMAIL, at, mailbox))
        return [
            *self._answer(call),
            act.DialLeg(
                call.id,
                leg.id,
                f"Local/s@{VOICEMAIL_CONTEXT}",
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
            ),
        ]

    # ------------------------------------------------------------ IVR

    def _start_menu(self, call: Call, ivr: Ivr, attempt: int, at: datetime) -> Actions:
        if attempt == 1:
            call.facts.append(Entered(Stage.IVR, at, ivr.name))
        playback_id = call.next_id("ivr")
        call.stage = Menu(ivr, attempt, playback_id)
        return [self._cancel(call, "ivr"), *self._play(call, (ivr.prompt,), playback_id)]

    def _menu_event(self, call: Call, menu: Menu, event: ev.Input) -> Actions:
        ivr = menu.ivr
        match event:
            case ev.PlaybackDone() | ev.ActionFailed(action="Play"):
                call.stage = replace(menu, playback_id=None)
                return [self._timer(call, "ivr", ivr.timeout_seconds)]
            case ev.DtmfReceived(digit=digit, at=at):
                call.facts.append(DigitPressed(digit, at))
                out: Actions = [self._cancel(call, "ivr")]
                if menu.playback_id:
                    out.append(act.StopPlayback(call.id, menu.playback_id))
                    self.playbacks.pop(menu.playback_id, None)
                chosen = ivr.options.get(digit)
                if chosen is not None:
                    return [*out, *self._enter(call, chosen, at)]
                if menu.attempt >= ivr.attempts:
                    return [*out, *self._enter_or_missed(call, ivr.invalid or ivr.no_input, at)]
                playback_id = call.next_id("ivr")
                call.stage = Menu(ivr, menu.attempt + 1, playback_id)
                return [*out, *self._play(call, (ivr.invalid_prompt, ivr.prompt), playback_id)]
            case ev.TimerFired(name="ivr", at=at):
                if menu.attempt >= ivr.attempts:
                    return self._enter_or_missed(call, ivr.no_input, at)
                return self._start_menu(call, ivr, menu.attempt + 1, at)
        return []

    def _enter_or_missed(self, call: Call, dest: Destination | None, at: datetime) -> Actions:
        return self._enter(call, dest, at) if dest else self._missed_call_handling(call, at)

    # ------------------------------------------------------------ ring groups

    def _start_ring_group(self, call: Call, group: RingGroup, at: datetime) -> Actions:
        call.facts.append(Entered(Stage.RING_GROUP, at, group.name))
        return self._ring_next_layer(call, group, 0, at, first=True)

    def _ring_next_layer(
        self, call: Call, group: RingGroup, layer: int, at: datetime, first: bool
    ) -> Actions:
        config = call.config
        for index in range(layer, len(group.layers)):
            order = self.board.ring_order(config, group, index, call.id)
            if order:
                return self._ring_layer(call, group, index, order, at)
        if group.queue is not None:
            return self._start_queue(call, group, at)
        why = RangOutWhy.NO_AGENTS if first else RangOutWhy.NO_ANSWER
        call.facts.append(RangOut(Stage.RING_GROUP, why, at))
        return [act.StopRing(call.id, call.channel_id), *self._missed_call_handling(call, at)]

    def _ring_layer(
        self, call: Call, group: RingGroup, layer: int, order: list[str], at: datetime
    ) -> Actions:
        ring_all = group.strategy.value == "ring_all"
        now, pending = (order, ()) if ring_all else (order[:1], tuple(order[1:]))
        call.stage = Ringing(Stage.RING_GROUP, group, layer, pending, group.fishing_mode)
        out: Actions = []
        for user in now:
            out += self._dial_user(call, user, group.ring_seconds)
        return [*out, *self._ringback(call), self._timer(call, "ring", group.ring_seconds)]

    def _dial_user(self, call: Call, user: str, ring_seconds: int) -> Actions:
        return self._dial(call, user, call.config.users[user].endpoint, ring_seconds)

    def _dial(self, call: Call, who: str, endpoint: str, ring_seconds: int) -> Actions:
        leg = Leg(call.next_id("leg"), who)
        call.legs[leg.id] = leg
        self._follow(call, leg.id)
        return [
            act.DialLeg(
                call.id, leg.id, endpoint, call.caller, call.caller_name, timeout_seconds=ring_seconds
            )
        ]

    def _ringing_event(self, call: Call, ringing: Ringing, event: ev.Input) -> Actions:
        match event:
            case ev.TimerFired(name="ring", at=at) if call.legs:
                call.stage = replace(ringing, ending=True)
                out: Actions = [act.Hangup(call.id, leg.id) for leg in call.legs.values()]
                return [*out, self._timer(call, "legs_gone", LEGS_GONE_WAIT_SECONDS)]
            case ev.TimerFired(name="legs_gone", at=at):
                log = act.Log(
                    call.id, call.line.name, "ringing_legs_not_gone", "warning", {"legs": len(call.legs)}
                )
                return [log, *self._attempt_over(call, ringing, at)]
            case ev.TimerFired(name="ring", at=at):
                return self._attempt_over(call, ringing, at)
        return []

    def _attempt_over(self, call: Call, ringing: Ringing, at: datetime) -> Actions:
        """Nobody answered this attempt (its ring time ran out or every leg failed)."""
        out = self._drop_legs(call)
        out += [self._cancel(call, name) for name in ("ring", "legs_gone") if name in call.timers]
        group = ringing.group
        if ringing.stage is Stage.RING_GROUP and group is not None:
            config = call.config
            pending = [u for u in ringing.pending if self.board.available(config, u)]
            if pending:
                call.stage = replace(ringing, pending=tuple(pending[1:]), ending=False)
                out += self._dial_user(call, pending[0], group.ring_seconds)
                return [*out, self._timer(call, "ring", group.ring_seconds)]
            return out + self._ring_next_layer(call, group, ringing.layer + 1, at, first=False)
        if ringing.stage is Stage.PERSONAL_LINE and ringing.pending:
            return out + self._ring_backup(call, ringing.pending[0], at)
        call.facts.append(RangOut(ringing.stage, RangOutWhy.NO_ANSWER, at))
        out.append(act.StopRing(call.id, call.channel_id))
        if ringing.stage is Stage.DIALER_CONTACT:
            return out + self._hang_up_caller(call, at, "contact_did_not_answer")
        if ringing.stage is Stage.EXTERNAL and call.missed_handlings:
            return out + self._hang_up_caller(call, at, "external_no_answer")
        return out + self._missed_call_handling(call, at)

    # ------------------------------------------------------------ queue

    def _start_queue(self, call: Call, group: RingGroup, at: datetime) -> Actions:
        queue = group.queue
        assert queue is not None
        call.stage = Queued(group, at)
        call.facts.append(Entered(Stage.QUEUE, at, group.name))
        self.board.enqueue(group.name, call.id)
        out: Actions = [
            act.StopRing(call.id, call.channel_id),
            *self._answer(call),
            act.StartMoh(call.id, call.channel_id, queue.music_class),
            self._timer(call, "queue_max_wait", queue.max_wait_seconds),
        ]
        if queue.announce_position_seconds:
            out.append(self._timer(call, "queue_announce", queue.announce_position_seconds))
        return out + self._dispatch_queue(group.name, at)

    def _queue_event(self, call: Call, queued: Queued, event: ev.Input) -> Actions:
        group = queued.group
        queue = group.queue
        assert queue is not None
        match event:
            case ev.TimerFired(name="queue_max_wait", at=at):
                self.board.dequeue(group.name, call.id)
                call.facts.append(RangOut(Stage.QUEUE, RangOutWhy.MAX_WAIT, at))
                out = self._drop_legs(call)
                out.append(act.StopMoh(call.id, call.channel_id))
                if queued.announcing:
                    out.append(act.StopPlayback(call.id, queued.announcing))
                out += [self._cancel(call, "queue_announce"), self._cancel(call, "queue_retry")]
                return out + self._missed_call_handling(call, at)
            case ev.TimerFired(name="queue_announce"):
                position = self.board.position(group.name, call.id)
                playback_id = call.next_id("position")
                call.stage = replace(queued, announcing=playback_id)
                media = ("sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting")
                return [
                    act.StopMoh(call.id, call.channel_id),
                    *self._play(call, media, playback_id),
                    self._timer(call, "queue_announce", queue.announce_position_seconds or 0),
                ]
            case ev.PlaybackDone() | ev.ActionFailed(action="Play") if queued.announcing:
                call.stage = replace(queued, announcing=None)
                return [act.StartMoh(call.id, call.channel_id, queue.music_class)]
            case ev.TimerFired(name="queue_retry", at=at) | ev.TimerFired(name="ring", at=at):
                out = self._drop_legs(call)
                return out + self._dispatch_queue(group.name, at)
        return []

    def _dispatch_queues(self, at: datetime) -> Actions:
        out: Actions = []
        for group in list(self.board.queues):
            out += self._dispatch_queue(group, at)
        return out

    def _dispatch_queue(self, group_name: str, at: datetime) -> Actions:
        """Offer waiting callers, longest-waiting first, to members who are free (and, in fishing
        mode, to members busy on another call)."""
        out: Actions = []
        for call_id in list(self.board.queues.get(group_name, [])):
            call = self.calls.get(call_id)
            if call is None or not isinstance(call.stage, Queued) or call.legs:
                continue
            group = call.stage.group
            member = self._free_member(call, group)
            if member is None:
                continue
            self.board.offered[member] = call.id
            offer = self._dial_user(call, member, group.ring_seconds)
            out += [*offer, self._timer(call, "ring", group.ring_seconds)]
        return out

    def _free_member(self, call: Call, group: RingGroup) -> str | None:
        config = call.config
        for layer in range(len(group.layers)):
            for user in self.board.ring_order(config, group, layer, call.id) or (
                [u for u in group.layers[layer] if self.board.reachable(config, u)]
                if group.fishing_mode
                else []
            ):
                if user not in self.board.offered:
                    return user
        return None

    # ------------------------------------------------------------ personal line, outside numbers

    def _start_personal_line(self, call: Call, user: str, at: datetime) -> Actions:
        call.facts.append(Entered(Stage.PERSONAL_LINE, at, user))
        backup = call.config.users[user].backup_number
        pending = (backup,) if backup else ()
        call.stage = Ringing(Stage.PERSONAL_LINE, None, 0, pending)
        if not self.board.available(call.config, user):
            return self._attempt_over(call, call.stage, at)
        out = self._dial_user(call, user, PERSONAL_RING_SECONDS)
        return [*out, *self._ringback(call), self._timer(call, "ring", PERSONAL_RING_SECONDS)]

    def _ring_backup(self, call: Call, number: str, at: datetime) -> Actions:
        call.facts.append(Entered(Stage.PERSONAL_LINE, at, f"backup {number}"))
        call.stage = Ringing(Stage.PERSONAL_LINE, None, 0, ())
        return self._dial_external(call, number, PERSONAL_RING_SECONDS)

    def _start_external(self, call: Call, number: str, at: datetime) -> Actions:
        call.facts.append(Entered(Stage.EXTERNAL, at, number))
        call.stage = Ringing(Stage.EXTERNAL, None, 0, ())
        return self._dial_external(call, number, EXTERNAL_RING_SECONDS)

    def _dial_external(self, call: Call, number: str, ring_seconds: int) -> Actions:
        template = call.config.asterisk.outbound_dial or "PJSIP/{number}"
        out = self._dial(call, f"external:{number}", template.format(number=number), ring_seconds)
        return [*out, *self._ringback(call), self._timer(call, "ring", ring_seconds)]

    # ------------------------------------------------------------ legs

    def _leg_event(self, call: Call, leg: Leg, event: ev.Input) -> Actions:
        match event:
            case ev.LegProgress(status="ANSWER", at=at):
                return self._leg_answered(call, leg, at)
            case ev.LegProgress(status=status, at=at) if status in LEG_FAILURES:
                return [act.Hangup(call.id, leg.id), *self._leg_gone(call, leg, at)]
            case ev.ChannelHungUp(at=at) | ev.ActionFailed(action="DialLeg", at=at):
                return self._leg_gone(call, leg, at)
            case ev.VoicemailFinished(status=status, seconds=seconds, at=at):
                return self._voicemail_finished(call, status, seconds, at)
        return []

    def _leg_answered(self, call: Call, leg: Leg, at: datetime) -> Actions:
        if leg.answered:
            return []
        leg.answered = True
        stage = call.stage
        if isinstance(stage, InVoicemail) and leg.id == stage.leg_id:
            call.bridged = True
            return [act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, leg.id))]
        if not isinstance(stage, Ringing | Queued) or (isinstance(stage, Ringing) and stage.ending):
            return [act.Hangup(call.id, leg.id)]
        out: Actions = [self._cancel(call, "ring")]
        for other in [o for o in call.legs.values() if o.id != leg.id]:
            out.append(act.Hangup(call.id, other.id))
            self._forget_leg(call, other)
        if isinstance(stage, Queued):
            self.board.dequeue(stage.group.name, call.id)
            out += [
                act.StopMoh(call.id, call.channel_id),
                self._cancel(call, "queue_max_wait"),
                self._cancel(call, "queue_announce"),
                self._cancel(call, "queue_retry"),
            ]
            if stage.announcing:
                out.append(act.StopPlayback(call.id, stage.announcing))
        else:
            out.append(act.StopRing(call.id, call.channel_id))
        group = stage.group
        self.board.offered.pop(leg.user, None)
        if leg.user in call.config.users:
            self.board.talking[leg.user] = call.id
            if group is not None:
                self.board.last_taker[group.name] = leg.user
        call.stage = Connecting(leg.id, leg.user, stage)
        call.bridged = True
        return [
            *out,
            *self._answer(call),
            act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, leg.id)),
        ]

    def _bridged(self, call: Call, connecting: Connecting, event: ev.ChannelBridged) -> Actions:
        """Answered means the caller and the user are in one bridge, not merely that the user's
        phone answered: on a loaded PBX a caller can hang up in between."""
        if event.bridge_id != call.bridge_id:
            return []
        entered = connecting.entered | {event.channel_id}
        if not {call.channel_id, connecting.leg_id} <= entered:
            call.stage = replace(connecting, entered=entered)
            return []
        call.answered_by = call.answered_by or connecting.by
        call.facts.append(Answered(connecting.by, event.at))
        call.stage = Talking(connecting.leg_id, connecting.by)
        return [act.Log(call.id, call.line.name, "call_answered", "info", {"by": connecting.by})]

    def _leg_gone(self, call: Call, leg: Leg, at: datetime) -> Actions:
        self._forget_leg(call, leg)
        stage = call.stage
        match stage:
            case Talking(leg_id=leg_id) if leg_id == leg.id:
                return self._hang_up_caller(call, at, "user_hung_up")
            case Connecting(leg_id=leg_id, by=by, was=was) if leg_id == leg.id:
                # The user hung up before the caller was put through: the caller must not be lost.
                if self.board.talking.get(by) == call.id:
                    del self.board.talking[by]
                if isinstance(was, Ringing):
                    return self._attempt_over(call, replace(was, pending=(), ending=False), at)
                call.facts.append(RangOut(Stage.QUEUE, RangOutWhy.NO_ANSWER, at))
                return self._missed_call_handling(call, at)
            case InVoicemail(leg_id=leg_id) if leg_id == leg.id:
                return self._hang_up_caller(call, at, "voicemail_done")
            case Ringing() if not call.legs:
                return self._attempt_over(call, stage, at)
            case Queued() if not call.legs:
                self.board.offered.pop(leg.user, None)
                return [self._cancel(call, "ring"), self._timer(call, "queue_retry", QUEUE_RETRY_SECONDS)]
        return []

    def _forget_leg(self, call: Call, leg: Leg) -> None:
        call.legs.pop(leg.id, None)
        if self.board.offered.get(leg.user) == call.id:
            del self.board.offered[leg.user]
        self.channels.pop(leg.id, None)

    def _drop_legs(self, call: Call) -> Actions:
        out: Actions = []
        for leg in list(call.legs.values()):
            out.append(act.Hangup(call.id, leg.id))
            self._forget_leg(call, leg)
        return out

    # ------------------------------------------------------------ voicemail

    def _press_one_event(self, call: Call, press: PressOne, event: ev.Input) -> Actions:
        handling = call.line.missed_calls
        match event:
            case ev.PlaybackDone() | ev.ActionFailed(action="Play"):
                call.stage = replace(press, playback_id=None)
                return [self._timer(call, "press1", handling.press_1_timeout_seconds)]
            case ev.DtmfReceived(digit="1", at=at):
                call.facts.append(DigitPressed("1", at))
                out: Actions = [self._cancel(call, "press1")]
                if press.playback_id:
                    out.append(act.StopPlayback(call.id, press.playback_id))
                return out + self._start_voicemail(call, at)
            case ev.DtmfReceived(digit=digit, at=at):
                call.facts.append(DigitPressed(digit, at))
                return self._hang_up_caller(call, at, "press_1_declined")
            case ev.TimerFired(name="press1", at=at):
                return self._hang_up_caller(call, at, "press_1_timeout")
        return []

    def _voicemail_finished(self, call: Call, status: str, seconds: int, at: datetime) -> Actions:
        call.voicemail_pending = False
        mailbox = call.stage.mailbox if isinstance(call.stage, InVoicemail) else call.line.mailbox
        call.voicemail = VoicemailResult(
            left=status == "SUCCESS" and seconds > 0, seconds=seconds, mailbox=mailbox
        )
        if isinstance(call.stage, Closing):
            return self._finish(call, at)
        return []

    # ------------------------------------------------------------ ending

    def _on_call_event(self, call: Call, event: ev.Input) -> Actions:
        if isinstance(event, ev.ChannelHungUp | ev.ActionFailed) and self._is_caller_gone(call, event):
            return self._caller_left(call, event.at)
        cid = getattr(event, "channel_id", None)
        leg = call.legs.get(cid) if cid else None
        if leg is None and isinstance(event, ev.VoicemailFinished):
            leg = Leg(cid or "", "voicemail")
        if leg is None and isinstance(event, ev.ActionFailed) and event.action == "DialLeg":
            leg = call.legs.get(event.target)
        if isinstance(event, ev.ChannelBridged):
            return self._bridged(call, call.stage, event) if isinstance(call.stage, Connecting) else []
        if leg is not None:
            return self._leg_event(call, leg, event)
        if isinstance(event, ev.TimerFired):
            if call.timers.get(event.name) != event.token:
                return []
            del call.timers[event.name]
            if event.name == "voicemail_result":
                return self._finish(call, event.at)
            if event.name == "playback_lost":
                event = ev.ActionFailed(call.id, "Play", call.channel_id, False, "never played", event.at)
        if isinstance(event, ev.ActionFailed) and event.action in ("Answer", "BridgeChannels", "StartMoh"):
            if event.gone:  # a channel of the call hung up meanwhile: its hangup, on its way, decides
                return []
            return self.fail_call(call.id, event.at, f"{event.action} failed: {event.message}")
        out: Actions = []
        playing = _playback_of(call.stage)
        if isinstance(event, ev.ActionFailed) and event.action == "Play" and playing:
            if event.unanswered:
                # A busy Asterisk may still play it, seconds late: what the caller hears is what
                # counts, so its end (or this long without it) says when the call goes on.
                return [self._timer(call, "playback_lost", PLAYBACK_LOST_SECONDS)]
            # Not over what comes next, should it start after all.
            out.append(act.StopPlayback(call.id, playing))
            self.playbacks.pop(playing, None)
        elif isinstance(event, ev.PlaybackDone) and "playback_lost" in call.timers:
            out.append(self._cancel(call, "playback_lost"))
        stage = call.stage
        match stage:
            case Welcome() if isinstance(event, ev.PlaybackDone | ev.ActionFailed):
                return out + self._enter(call, call.line.route, event.at)
            case Menu():
                return out + self._menu_event(call, stage, event)
            case Ringing():
                return out + self._ringing_event(call, stage, event)
            case Queued():
                return out + self._queue_event(call, stage, event)
            case PressOne():
                return out + self._press_one_event(call, stage, event)
            case DialingUser():
                return out + self._dialing_user_event(call, stage, event)
        return out

    def _is_caller_gone(self, call: Call, event: ev.ChannelHungUp | ev.ActionFailed) -> bool:
        if isinstance(event, ev.ChannelHungUp):
            return event.channel_id == call.channel_id
        return event.gone and event.target == call.channel_id

    def _caller_left(self, call: Call, at: datetime) -> Actions:
        if isinstance(call.stage, Closing):
            return []
        stage = call.stage.was if isinstance(call.stage, Connecting) else call.stage
        if any(fact.at > at for fact in call.facts):
            # By Asterisk's clock the caller left before the latest of our decisions (a timer
            # fired while their hangup was on its way): the journey ends where they really were.
            call.facts = [fact for fact in call.facts if fact.at <= at]
            call.facts.append(_hangup_where(call.config, call.facts, at))
        elif not isinstance(stage, Talking):
            call.facts.append(
                CallerHungUp(stage.stage, at, isinstance(stage, Ringing | Queued) and self._fishing(stage))
            )
        self.channels.pop(call.channel_id, None)
        return self._close(call, at)

    @staticmethod
    def _fishing(stage: Ringing | Queued) -> bool:
        return stage.fishing if isinstance(stage, Ringing) else stage.group.fishing_mode

    def _hang_up_caller(self, call: Call, at: datetime, why: str) -> Actions:
        self.channels.pop(call.channel_id, None)
        return [
            act.Hangup(call.id, call.channel_id),
            act.Log(call.id, call.line.name, "call_ended", "info", {"why": why}),
            *self._close(call, at),
        ]

    def _close(self, call: Call, at: datetime) -> Actions:
        """The caller is gone: hang up what is left; wait for a voicemail result if one is due."""
        out = self._drop_legs(call)
        for name in list(call.timers):
            out.append(self._cancel(call, name))
        if isinstance(call.stage, Queued):
            self.board.dequeue(call.stage.group.name, call.id)
        call.stage = Closing()
        if call.voicemail_pending:
            return [*out, self._timer(call, "voicemail_result", VOICEMAIL_RESULT_WAIT_SECONDS)]
        return out + self._finish(call, at)

    def _finish(self, call: Call, at: datetime) -> Actions:
        out: Actions = []
        for name in list(call.timers):
            out.append(self._cancel(call, name))
        if call.bridged:
            out.append(act.DestroyBridge(call.id, call.bridge_id))
        verdict = classify(call.facts, call.started_at, at, call.origin.short_abandon_seconds)
        record = replace(
            self.progress_record(call),
            ended_at=at,
            outcome=verdict.outcome,
            reason=verdict.reason,
            short=verdict.short,
            end_observed=call.end_observed,
        )
        self.calls.pop(call.id, None)
        for followed in call.followed:
            self.channels.pop(followed, None)
            self.playbacks.pop(followed, None)
        freed = self.board.release(call.id)
        out += [
            act.SaveRecord(call.id, record, final=True),
            act.Log(
                call.id,
                call.line.name,
                "call_verdict",
                "info",
                {"outcome": verdict.outcome.value, "reason": verdict.reason.value, "short": verdict.short},
            ),
            act.Forget(call.id),
        ]
        return out + (self._dispatch_queues(at) if freed or self.board.queues else [])

    # ------------------------------------------------------------ restart and shutdown

    def _adopt(self, event: ev.CallAdopted) -> Actions:
        """A caller waits in our app and no call follows it: the daemon before us died. The call
        goes on from its stored journey: talking or voicemail while a leg of ours serves the caller,
        hung up if that service ended meanwhile, otherwise routed again from where it was."""
        record = event.record
        origin = self.config.lines.get(record.line or "") if record else None
        origin = origin or self.config.line_for_number(event.dialed)
        if origin is None or not self.accepting:
            arrived = ev.CallArrived(
                event.channel_id, event.caller, event.caller_name, event.dialed, event.at
            )
            legs: Actions = [act.Hangup(event.channel_id, leg.channel_id) for leg in event.legs]
            legs += self._not_taken(arrived, origin)
            return legs + (self.close_unobserved(record, event.at) if record else [])
        call = Call(
            id=event.channel_id,
            config=self.config,
            line=origin,
            origin=origin,
            caller=event.caller,
            caller_name=event.caller_name,
            dialed=event.dialed,
            channel_id=event.channel_id,
            started_at=record.started_at if record else event.at,
        )
        call.bridged = event.bridge == call.bridge_id
        playback = str(record.extra.get(PLAYBACK, "")) if record else ""
        if record is not None:
            call.facts = facts_from_steps(record.steps)
            call.answered_by, call.voicemail = record.answered_by, record.voicemail
            lines = [f.detail for f in call.facts if isinstance(f, Entered) and f.stage is Stage.LINE]
            call.line = self.config.lines.get(lines[-1], origin) if lines else origin
        # New ids must not meet the old ones that Asterisk may still hold.
        call.seq = max(_serial(call.id, known) for known in (playback, *(g.channel_id for g in event.legs)))
        stage, detail = _where(call.facts)
        call.facts.append(Entered(Stage.ADOPTED, event.at, stage.value))
        self.calls[call.id] = call
        self._follow(call, call.channel_id)
        out: Actions = [act.Log(call.id, call.line.name, "call_adopted", "warning", {"stage": stage.value})]
        call.caller_answered = event.answered
        if playback:
            out.append(act.StopPlayback(call.id, playback))
        serving = _serving_leg(event)
        out += [act.Hangup(call.id, leg.channel_id) for leg in event.legs if leg is not serving]
        if serving is None:
            out += self._resume(call, stage, detail, event.at)
        elif serving.channel_id.startswith(f"{call.id}-vm-"):
            self._resume_voicemail(call, serving.channel_id, detail if stage is Stage.VOICEMAIL else "")
        else:
            out += self._resume_talking(call, serving, stage, event.at)
        return self._with_progress(call, out)

    def _resume(self, call: Call, stage: Stage, detail: str, at: datetime) -> Actions:
        """An adopted caller nobody serves: on from the stage the journey stopped in."""
        config = call.config
        match stage:
            case Stage.TALKING | Stage.VOICEMAIL | Stage.DEAD_END:
                return self._hang_up_caller(call, at, "ended_while_unattended")
            case Stage.WELCOME:
                return self._enter(call, call.line.route, at)
            case Stage.IVR if detail in config.ivrs:
                return self._start_menu(call, config.ivrs[detail], 1, at)
            case Stage.RING_GROUP if detail in config.ring_groups:
                return self._start_ring_group(call, config.ring_groups[detail], at)
            case Stage.QUEUE if detail in config.ring_groups and config.ring_groups[detail].queue:
                return self._start_queue(call, config.ring_groups[detail], at)
            case Stage.PERSONAL_LINE if detail in config.users:
                return self._start_personal_line(call, detail, at)
            case Stage.PERSONAL_LINE if detail.startswith("backup "):
                return self._ring_backup(call, detail.removeprefix("backup "), at)
            case Stage.EXTERNAL:
                return self._start_external(call, detail, at)
            case Stage.MISSED_CALL_HANDLING | Stage.PRESS_1:
                return self._missed_call_handling(call, at)
        return self._start_line(call, at)

    def _resume_talking(self, call: Call, serving: ev.AdoptedLeg, stage: Stage, at: datetime) -> Actions:
        by = call.answered_by or next(
            (u.name for u in call.config.users.values() if serving.name.startswith(f"{u.endpoint}-")),
            serving.name,
        )
        call.legs[serving.channel_id] = Leg(serving.channel_id, by, answered=True)
        self._follow(call, serving.channel_id)
        call.stage = Talking(serving.channel_id, by)
        if by in call.config.users:
            self.board.talking[by] = call.id
        if not any(isinstance(f, Answered) for f in call.facts):
            call.answered_by = by
            call.facts.append(Answered(by, at))
        if serving.bridge is not None:
            return []
        # A user answered while no daemon ran: connect them now.
        call.bridged = True
        stop: act.Action = (
            act.StopMoh(call.id, call.channel_id)
            if stage is Stage.QUEUE
            else act.StopRing(call.id, call.channel_id)
        )
        return [
            stop,
            *self._answer(call),
            act.BridgeChannels(call.id, call.bridge_id, (call.channel_id, serving.channel_id)),
        ]

    def _resume_voicemail(self, call: Call, leg_id: str, mailbox: str) -> None:
        call.legs[leg_id] = Leg(leg_id, "voicemail", answered=True)
        self._follow(call, leg_id)
        self._follow(call, f"{leg_id}-far")
        call.stage = InVoicemail(leg_id, mailbox or call.line.mailbox)
        call.voicemail_pending = True

    def close_unobserved(self, record: CallRecord, at: datetime) -> Actions:
        """The open record of a call that ended while no daemon watched (this one was down or cut
        off): the caller is taken to have left where the journey stopped."""
        facts = facts_from_steps(record.steps)
        hangup = _hangup_where(self.config, facts, at)
        facts.append(hangup)
        line = self.config.lines.get(record.line or "")
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
        return [
            act.SaveRecord(record.id, final, final=True),
            act.Log(
                record.id,
                record.line,
                "call_end_not_observed",
                "warning",
                {"stage": hangup.stage.value, "reason": verdict.reason.value},
            ),
        ]

    def shut_down(self, at: datetime) -> Actions:
        """The shutdown grace is over with calls left: none may stay in our app without a daemon.
        Callers who talk or leave a message are hung up; the others get the failure treatment."""
        self.board.queues.clear()
        out: Actions = []
        for call in list(self.calls.values()):
            if isinstance(call.stage, Connecting | Talking | InVoicemail):
                out += self._hang_up_caller(call, at, "shutdown")
            elif not isinstance(call.stage, Closing):
                out += self.fail_call(call.id, at, "still in progress when the shutdown grace expired")
            if call.id in self.calls:  # a voicemail result that would come too late
                out += self._finish(call, at)
        return out

    # ------------------------------------------------------------ records and helpers

    def progress_record(self, call: Call) -> CallRecord:
        return CallRecord(
            id=call.id,
            direction=call.direction,
            line=call.origin.name,
            caller=call.caller,
            dialed=call.dialed,
            started_at=call.started_at,
            answered_by=call.answered_by,
            voicemail=call.voicemail,
            steps=tuple(_step(f) for f in call.facts),
            host=self.host,
            extra={PLAYBACK: playback} if (playback := _playback_of(call.stage)) else {},
        )

    def _with_progress(self, call: Call, out: Actions) -> Actions:
        """Save the record of a call in progress whenever its journey grew or its caller's audio
        changed (restart safety: a daemon adopting the call must stop that audio first)."""
        playback = _playback_of(call.stage)
        if call.id in self.calls and (len(call.facts), playback) != (call.saved_facts, call.saved_playback):
            call.saved_facts, call.saved_playback = len(call.facts), playback
            out.append(act.SaveRecord(call.id, self.progress_record(call)))
        return out

    def _follow(self, call: Call, channel_id: str) -> None:
        self.channels[channel_id] = call.id
        call.followed.add(channel_id)

    def _ringback(self, call: Call) -> Actions:
        """The caller hears ringing; asked for after the dials, which are what the users wait for."""
        return [] if call.direction is Direction.OUTBOUND else [act.Ring(call.id, call.channel_id)]

    def _answer(self, call: Call) -> Actions:
        if call.caller_answered:
            return []
        call.caller_answered = True
        return [act.Answer(call.id, call.channel_id)]

    def _play(self, call: Call, media: tuple[str, ...], playback_id: str) -> Actions:
        self.playbacks[playback_id] = call.id
        call.followed.add(playback_id)
        return [*self._answer(call), act.Play(call.id, call.channel_id, media, playback_id)]

    def _timer(self, call: Call, name: str, seconds: float) -> act.StartTimer:
        call.seq += 1
        call.timers[name] = call.seq
        return act.StartTimer(call.id, name, seconds, call.seq)

    def _cancel(self, call: Call, name: str) -> act.CancelTimer:
        call.timers.pop(name, None)
        return act.CancelTimer(call.id, name)


def _playback_of(stage: CallStage) -> str | None:
    match stage:
        case Welcome(playback_id=playing) | Menu(playback_id=playing) | PressOne(playback_id=playing):
            return playing
        case Queued(announcing=playing):
            return playing
    return None


def _where(facts: list[Fact]) -> tuple[Stage, str]:
    """The stage a stored journey stopped in (talking once answered), and its detail."""
    for fact in reversed(facts):
        match fact:
            case Answered(by=by):
                return Stage.TALKING, by
            case Entered(stage=stage, detail=detail) if stage is not Stage.ADOPTED:
                return stage, detail
    return Stage.ARRIVED, ""


def _hangup_where(config: Config, facts: list[Fact], at: datetime) -> CallerHungUp:
    """The caller's hangup where a journey known only from its facts stopped."""
    stage, detail = _where(facts)
    group = config.ring_groups.get(detail) if stage in (Stage.RING_GROUP, Stage.QUEUE) else None
    return CallerHungUp(stage, at, group is not None and group.fishing_mode)


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


def facts_from_steps(steps: tuple[Step, ...]) -> list[Fact]:
    """The journey back from a stored record (a call whose end the daemon did not see)."""
    facts: list[Fact] = []
    for step in steps:
        if step.stage == "dtmf":
            facts.append(DigitPressed(step.detail, step.at))
        elif step.stage == "answered":
            facts.append(Answered(step.detail, step.at))
        elif step.stage == "caller_hangup":
            stage, _, fishing = step.detail.partition(",")
            facts.append(CallerHungUp(Stage(stage), step.at, fishing == "fishing"))
        elif step.stage.endswith("_ended"):
            facts.append(RangOut(Stage(step.stage.removesuffix("_ended")), RangOutWhy(step.detail), step.at))
        else:
            facts.append(Entered(Stage(step.stage), step.at, step.detail))
    return facts


def _step(fact: Fact) -> Step:
    match fact:
        case Entered(stage=stage, at=at, detail=detail):
            return Step(stage.value, at, detail)
        case DigitPressed(digit=digit, at=at):
            return Step("dtmf", at, digit)
        case RangOut(stage=stage, why=why, at=at):
            return Step(f"{stage.value}_ended", at, why.value)
        case Answered(by=by, at=at):
            return Step("answered", at, by)
        case CallerHungUp(stage=stage, at=at, fishing=fishing):
            return Step("caller_hangup", at, f"{stage.value},fishing" if fishing else stage.value)
