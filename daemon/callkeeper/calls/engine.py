"""The pure call logic: every input becomes the next state of the calls it touches and the actions
the shell must carry out. No I/O and no clock: time comes in with the inputs.

This is the router: it finds the call an input belongs to, hands the input to the feature the call
is in (ivr, ring_group, queue, personal_line, voicemail, dialer, adoption; legs for what all
ringing features share), and carries out the transition the feature returns (on to a
destination, missed-call handling, hang up, finish). It keeps what is known across calls: the
switchboard and which call each channel and playback belongs to. The verdict is left to
`journey.classify`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from callkeeper.calls import actions as act
from callkeeper.calls import adoption, dialer, handoff, ivr, legs, personal_line, queue, ring_group, voicemail
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.call import (
    Actions,
    AttemptOver,
    Call,
    Closing,
    Connecting,
    DialingUser,
    EnterQueue,
    Finish,
    GoTo,
    HandedOff,
    HangUp,
    InVoicemail,
    Menu,
    MissedCalls,
    Next,
    OfferQueue,
    PressOne,
    Queued,
    RingBackup,
    Ringing,
    Routes,
    StartLine,
    Talking,
    Transition,
    Welcome,
    fishing,
    hangup_where,
    inbound_call,
    playback_of,
)
from callkeeper.calls.hours import Override, is_open
from callkeeper.calls.journey import CallerHungUp, Entered, RangOut, RangOutWhy, Stage, classify
from callkeeper.calls.switchboard import Switchboard
from callkeeper.config.model import Config, Destination, DestinationKind, Line, UnknownNumberAction
from callkeeper.records import CallRecord, Direction, Outcome, Reason

VOICEMAIL_RESULT_WAIT_SECONDS = 3.0
PLAYBACK_LOST_SECONDS = 20.0
# A failure of one of these leaves the caller nowhere to be: the call fails.
_VITAL = (act.Answer, act.BridgeChannels, act.StartMoh)


@dataclass(frozen=True, slots=True)
class Following:
    """What the engine follows, for a reconcile with what Asterisk has."""

    channels: tuple[str, ...]  # every channel of every call
    callers: frozenset[str]  # the callers' channels among them
    calls: frozenset[str]
    bridges: frozenset[str]  # the calls' bridges


class Engine:
    """All calls of one daemon. `handle` is called for every input, in arrival order; the shell
    asks the questions below and never reads the calls themselves."""

    def __init__(self, config: Config, host: str = "") -> None:
        self.config = config
        self.host = host
        self.calls: dict[str, Call] = {}
        self.routes = Routes()
        self.board = Switchboard()
        self._accepting = True

    # ------------------------------------------------------------ questions

    def call_of(self, channel_id: str) -> str | None:
        """The call that follows this channel."""
        return self.routes.channels.get(channel_id)

    def calls_in_progress(self) -> int:
        return len(self.calls)

    def presence(self, user: str) -> str:
        """`away`, `busy`, `offline` or `available`."""
        return self.board.presence(self.config, user)

    def away(self) -> list[str]:
        return sorted(self.board.away)

    def do_not_disturb(self) -> list[str]:
        return sorted(self.board.dnd)

    def line_override(self, line: str) -> Override:
        return self.board.line_overrides.get(line, "auto")

    def queue_waiters(self) -> dict[str, list[queue.Waiting]]:
        """Callers waiting, by ring group, longest waiting first."""
        return queue.waiters(self.calls, self.board)

    def following(self) -> Following:
        calls = self.calls.values()
        return Following(
            tuple(self.routes.channels),
            frozenset(call.channel_id for call in calls),
            frozenset(self.calls),
            frozenset(call.bridge_id for call in calls),
        )

    # ------------------------------------------------------------ entry points

    def handle(self, event: ev.Input) -> Actions:
        match event:
            case ev.CallArrived():
                return self._arrive(event)
            case ev.DialerRequested():
                return self._dial_out(event)
            case ev.EndpointStateChanged(endpoint=endpoint, online=online):
                return self._offer_queues() if self.board.set_online(endpoint, online) else []
            case ev.DeviceStateChanged(device=device, busy=busy, online=online):
                came_online = self.board.set_online(device, online)
                freed = not busy and device in self.board.busy_devices
                (self.board.busy_devices.add if busy else self.board.busy_devices.discard)(device)
                return self._offer_queues() if freed or came_online else []
            case ev.PresenceChanged(user=user, away=away, dnd=dnd):
                (self.board.away.add if away else self.board.away.discard)(user)
                (self.board.dnd.add if dnd else self.board.dnd.discard)(user)
                return [] if away or dnd else self._offer_queues()
            case ev.LineOverrideChanged(line=line, mode=mode):
                if mode == "auto":
                    self.board.line_overrides.pop(line, None)
                else:
                    self.board.line_overrides[line] = mode
                return []
            case ev.TurnTaken(group=group, user=user):
                self.board.last_taker[group] = user
                return []
            case ev.StopAccepting():
                self._accepting = False
                return []
            case ev.CallAdopted():
                return self._adopt(event)
            case ev.DialerCallAdopted():
                return self._adopt_dialer_call(event)
            case ev.TimerFired(call_id=call_id) | ev.ActionFailed(call_id=call_id):
                call = self.calls.get(call_id)
            case ev.PlaybackDone(playback_id=playback_id):
                call = self.calls.get(self.routes.playbacks.pop(playback_id, ""))
            case (
                ev.ChannelHungUp(channel_id=cid)
                | ev.LegProgress(channel_id=cid)
                | ev.ChannelBridged(channel_id=cid)
                | ev.DtmfReceived(channel_id=cid)
                | ev.VoicemailFinished(channel_id=cid)
                | ev.LeftApp(channel_id=cid)
                | ev.CallerConnected(channel_id=cid)
                | ev.HandoffEnded(channel_id=cid)
            ):
                call = self.calls.get(self.routes.channels.get(cid, ""))
            case _:
                return []
        if call is None:
            return []
        if isinstance(call.stage, HandedOff) and event_channel(event) in (call.channel_id, None):
            if (
                isinstance(event, ev.ActionFailed)
                and isinstance(event.action, act.HandOff)
                and not event.gone
            ):
                return self.fail_call(call.id, event.at, f"hand-off failed: {event.message}")
            if isinstance(event, ev.ChannelHungUp) and not event.observed:
                call.end_observed = False
            return self._with_progress(call, self._apply(call, handoff.on_event(call, event), event.at))
        if isinstance(event, ev.LeftApp):  # out of our app other than by a hand-off: gone
            event = ev.ChannelHungUp(event.channel_id, event.at)
        if isinstance(event, ev.ChannelHungUp) and not event.observed:
            # Asterisk went away: the call is cut off where it was, whichever channel went first.
            call.end_observed = False
            return self._with_progress(call, self._caller_left(call, event.at))
        return self._with_progress(call, self._on_call_event(call, event))

    def fail_call(self, call_id: str, at: datetime, error: str) -> Actions:
        """An unexpected error while handling this call: never strand the caller."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        out: Actions = [act.Log(call.id, call.line.name, "call_failed", "error", {"error": error})]
        out += call.drop_legs(self.board)
        treatment = call.config.unknown_number
        if treatment.action is UnknownNumberAction.DIALPLAN and call.direction is Direction.INBOUND:
            out.append(act.ContinueInDialplan(call.id, call.channel_id, treatment.context, call.dialed))
            self.routes.channels.pop(call.channel_id, None)
        else:
            out.append(act.Hangup(call.id, call.channel_id, treatment.hangup_cause))
        return out + self._finish(call, at)

    def reload(self, config: Config) -> None:
        """New calls use `config`; calls in progress keep the one they started with."""
        self.config = config

    def free_user(self, user: str | None, ring_group: str | None) -> str | None:
        """Who the dialer would reach first: the user if free, else the group's first free member."""
        return dialer.free_user(self.config, self.board, user, ring_group)

    def close_unobserved(self, record: CallRecord, at: datetime) -> Actions:
        return adoption.close_unobserved(self.config, record, at)

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

    # ------------------------------------------------------------ new calls

    def _arrive(self, event: ev.CallArrived) -> Actions:
        call_id = event.channel_id
        if call_id in self.calls:
            return []
        line = self.config.line_for_number(event.dialed)
        if line is None or not self._accepting:
            return self._not_taken(event, line)
        call = inbound_call(self.config, self.routes, line, event, event.at)
        self.calls[call_id] = call
        call.follow(call.channel_id)
        log = act.Log(
            call_id, line.name, "call_arrived", "info", {"caller": call.caller, "dialed": call.dialed}
        )
        return self._with_progress(call, [log, *self._start_line(call, event.at)])

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
        fields = {"dialed": event.dialed, "treatment": treatment.action.value}
        out: Actions = [act.Log(call_id, None, "unknown_number", "warning", fields)]
        if treatment.action is UnknownNumberAction.DIALPLAN:
            out.append(act.ContinueInDialplan(call_id, event.channel_id, treatment.context, event.dialed))
        else:
            out.append(act.Hangup(call_id, event.channel_id, treatment.hangup_cause))
        return [*out, act.SaveRecord(call_id, record, final=True), act.Forget(call_id)]

    def _dial_out(self, event: ev.DialerRequested) -> Actions:
        if event.call_id in self.calls:
            return []
        call = dialer.new_call(self.config, self.routes, event)
        self.calls[call.id] = call
        call.follow(call.channel_id)
        return self._with_progress(call, self._apply(call, dialer.start(call, self.board, event), event.at))

    def _adopt(self, event: ev.CallAdopted) -> Actions:
        record = event.record
        origin = self.config.lines.get(record.line or "") if record else None
        origin = origin or self.config.line_for_number(event.dialed)
        if origin is None or not self._accepting:
            arrived = ev.CallArrived(
                event.channel_id, event.caller, event.caller_name, event.dialed, event.at
            )
            out: Actions = [act.Hangup(event.channel_id, leg.channel_id) for leg in event.legs]
            out += self._not_taken(arrived, origin)
            return out + (self.close_unobserved(record, event.at) if record else [])
        call = adoption.new_call(self.config, self.routes, event, origin)
        self.calls[call.id] = call
        return self._with_progress(
            call, self._apply(call, adoption.resume(call, self.board, event), event.at)
        )

    def _adopt_dialer_call(self, event: ev.DialerCallAdopted) -> Actions:
        if event.call_id in self.calls:
            return []
        line = self.config.lines.get(event.record.line or "")
        if line is None or not self._accepting:
            out: Actions = [act.Hangup(event.call_id, c.channel_id) for c in (event.user, *event.legs)]
            return out + self.close_unobserved(event.record, event.at)
        call = dialer.adopted_call(self.config, self.routes, line, event)
        self.calls[call.id] = call
        return self._with_progress(call, self._apply(call, dialer.resume(call, self.board, event), event.at))

    # ------------------------------------------------------------ routing

    def _on_call_event(self, call: Call, event: ev.Input) -> Actions:
        if isinstance(event, ev.ChannelHungUp | ev.ActionFailed) and self._is_caller_gone(call, event):
            return self._caller_left(call, event.at)
        if isinstance(event, ev.ChannelBridged):
            stage = call.stage
            return (
                self._apply(call, legs.bridged(call, stage, event), event.at)
                if isinstance(stage, Connecting)
                else []
            )
        if isinstance(event, ev.VoicemailFinished):
            return self._apply(call, voicemail.finished(call, event.status, event.seconds), event.at)
        cid = getattr(event, "channel_id", None)
        leg = call.legs.get(cid) if cid else None
        if leg is None and isinstance(event, ev.ActionFailed) and isinstance(event.action, act.DialLeg):
            leg = call.legs.get(event.target)
        if leg is not None:
            return self._apply(call, legs.on_leg(call, self.board, leg, event), event.at)
        if isinstance(event, ev.TimerFired):
            if call.timers.get(event.name) != event.token:
                return []
            del call.timers[event.name]
            if event.name == Timer.VOICEMAIL_RESULT:
                return self._finish(call, event.at)
            if event.name == Timer.PLAYBACK_LOST:
                lost = act.Play(call.id, call.channel_id, (), playback_of(call.stage) or "")
                event = ev.ActionFailed(call.id, lost, call.channel_id, False, "never played", event.at)
        if isinstance(event, ev.ActionFailed) and isinstance(event.action, _VITAL):
            if event.gone:  # a channel of the call hung up meanwhile: its hangup, on its way, decides
                return []
            return self.fail_call(call.id, event.at, f"{type(event.action).__name__} failed: {event.message}")
        out: Actions = []
        playing = playback_of(call.stage)
        if isinstance(event, ev.ActionFailed) and isinstance(event.action, act.Play) and playing:
            if event.unanswered:
                # A busy Asterisk may still play it, seconds late: what the caller hears is what
                # counts, so its end (or this long without it) says when the call goes on.
                return [call.timer(Timer.PLAYBACK_LOST, PLAYBACK_LOST_SECONDS)]
            # Not over what comes next, should it start after all.
            out.append(call.stop_playback(playing))
        elif isinstance(event, ev.PlaybackDone) and Timer.PLAYBACK_LOST in call.timers:
            out.append(call.cancel(Timer.PLAYBACK_LOST))
        stage = call.stage
        match stage:
            case Welcome() if isinstance(event, ev.PlaybackDone | ev.ActionFailed):
                return out + self._enter(call, call.line.route, event.at)
            case Menu():
                step = ivr.on_event(call, stage, event)
            case Ringing():
                step = legs.on_ringing(call, stage, event)
            case Queued():
                step = queue.on_event(call, self.board, stage, event)
            case PressOne():
                step = voicemail.on_press_one(call, stage, event)
            case DialingUser():
                step = dialer.on_event(call, self.board, stage, event)
            case _:
                return out
        return out + self._apply(call, step, event.at)

    def _apply(self, call: Call, step: Next, at: datetime) -> Actions:
        """The call takes the stage a feature decided, then goes where it said."""
        if step.stage is not None:
            call.stage = step.stage
        if step.then is None:
            return step.actions
        return step.actions + self._go(call, step.then, at)

    def _go(self, call: Call, then: Transition, at: datetime) -> Actions:
        match then:
            case GoTo(destination=destination):
                return self._enter(call, destination, at)
            case MissedCalls():
                return self._apply(call, voicemail.missed_call_handling(call, at), at)
            case HangUp(why=why):
                return self._hang_up_caller(call, at, why)
            case Finish():
                return self._finish(call, at)
            case StartLine():
                return self._start_line(call, at)
            case EnterQueue(group=group):
                return self._apply(call, queue.start(call, self.board, group, at), at)
            case OfferQueue(group=group_name):
                return queue.offer(self.calls, self.board, group_name)
            case AttemptOver(ringing=ringing):
                return self._attempt_over(call, ringing, at)
            case RingBackup(number=number):
                return self._apply(call, personal_line.ring_backup(call, number, at), at)

    def _start_line(self, call: Call, at: datetime) -> Actions:
        line = call.line
        # Before anything is played: Asterisk then plays the line's prompts and says numbers in it.
        out: Actions = []
        if line.language and call.direction is Direction.INBOUND:
            out.append(act.SetVariable(call.id, call.channel_id, "CHANNEL(language)", line.language))
        if not is_open(line, at, self.board.line_overrides.get(line.name, "auto")):
            call.facts.append(Entered(Stage.AFTER_HOURS, at, line.name))
            return out + self._enter(call, line.after_hours, at)
        if line.welcome:
            playback_id = call.next_id("welcome")
            call.facts.append(Entered(Stage.WELCOME, at, line.welcome))
            welcome = Next(call.play((line.welcome,), playback_id), Welcome(playback_id))
            return out + self._apply(call, welcome, at)
        return out + self._enter(call, line.route, at)

    def _enter(self, call: Call, dest: Destination, at: datetime) -> Actions:
        config = call.config
        call.personal_line_of = None
        match dest.kind:
            case DestinationKind.IVR:
                step = ivr.start(call, config.ivrs[str(dest.target)], 1, at)
            case DestinationKind.RING_GROUP:
                step = ring_group.start(call, self.board, config.ring_groups[str(dest.target)], at)
            case DestinationKind.USER:
                step = personal_line.start(call, self.board, str(dest.target), at)
            case DestinationKind.LINE:
                call.transfers += 1
                if call.transfers > len(config.lines):
                    return self._hang_up_caller(call, at, "line_loop")
                call.line = config.lines[str(dest.target)]
                call.facts.append(Entered(Stage.LINE, at, call.line.name))
                return self._start_line(call, at)
            case DestinationKind.EXTERNAL:
                step = personal_line.start_external(call, str(dest.target), at)
            case DestinationKind.VOICEMAIL:
                step = voicemail.missed_call_handling(call, at)
            case DestinationKind.DEAD_END:
                call.facts.append(Entered(Stage.DEAD_END, at))
                return self._hang_up_caller(call, at, "dead_end")
            case DestinationKind.DIALPLAN:
                step = handoff.start(call, str(dest.target), at)
        return self._apply(call, step, at)

    def _attempt_over(self, call: Call, ringing: Ringing, at: datetime) -> Actions:
        """Nobody answered this attempt (its ring time ran out or every leg failed)."""
        out = call.drop_legs(self.board)
        out += [call.cancel(name) for name in (Timer.RING, Timer.LEGS_GONE) if name in call.timers]
        group = ringing.group
        if ringing.stage is Stage.RING_GROUP and group is not None:
            return out + self._apply(call, ring_group.next_attempt(call, self.board, ringing, group, at), at)
        if ringing.stage is Stage.PERSONAL_LINE and ringing.pending:
            return out + self._go(call, RingBackup(ringing.pending[0]), at)
        call.facts.append(RangOut(ringing.stage, RangOutWhy.NO_ANSWER, at))
        out.append(act.StopRing(call.id, call.channel_id))
        if ringing.stage is Stage.DIALER_CONTACT:
            return out + self._hang_up_caller(call, at, "contact_did_not_answer")
        if ringing.stage is Stage.EXTERNAL and call.missed_handlings:
            return out + self._hang_up_caller(call, at, "external_no_answer")
        return out + self._go(call, MissedCalls(), at)

    def _offer_queues(self) -> Actions:
        out: Actions = []
        for group in list(self.board.queues):
            out += queue.offer(self.calls, self.board, group)
        return out

    # ------------------------------------------------------------ ending

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
            call.facts.append(hangup_where(call.config, call.facts, at))
        elif not isinstance(stage, Talking):
            call.facts.append(
                CallerHungUp(stage.stage, at, isinstance(stage, Ringing | Queued) and fishing(stage))
            )
        self.routes.channels.pop(call.channel_id, None)
        return self._close(call, at)

    def _hang_up_caller(self, call: Call, at: datetime, why: str) -> Actions:
        self.routes.channels.pop(call.channel_id, None)
        return [
            act.Hangup(call.id, call.channel_id),
            act.Log(call.id, call.line.name, "call_ended", "info", {"why": why}),
            *self._close(call, at),
        ]

    def _close(self, call: Call, at: datetime) -> Actions:
        """The caller is gone: hang up what is left; wait for a voicemail result if one is due."""
        out = call.drop_legs(self.board)
        for name in list(call.timers):
            out.append(call.cancel(name))
        if isinstance(call.stage, Queued):
            self.board.dequeue(call.stage.group.name, call.id)
        call.stage = Closing()
        if call.voicemail_pending:
            return [*out, call.timer(Timer.VOICEMAIL_RESULT, VOICEMAIL_RESULT_WAIT_SECONDS)]
        return out + self._finish(call, at)

    def _finish(self, call: Call, at: datetime) -> Actions:
        out: Actions = [call.cancel(name) for name in list(call.timers)]
        if call.bridged:
            out.append(act.DestroyBridge(call.id, call.bridge_id))
        verdict = classify(call.facts, call.started_at, at, call.origin.short_abandon_seconds)
        record = replace(
            call.record(self.host),
            ended_at=at,
            outcome=verdict.outcome,
            reason=verdict.reason,
            short=verdict.short,
            end_observed=call.end_observed,
        )
        self.calls.pop(call.id, None)
        for followed in call.followed:
            self.routes.channels.pop(followed, None)
            self.routes.playbacks.pop(followed, None)
        freed = self.board.release(call.id)
        fields = {"outcome": verdict.outcome.value, "reason": verdict.reason.value, "short": verdict.short}
        out += [
            act.SaveRecord(call.id, record, final=True),
            act.Log(call.id, call.line.name, "call_verdict", "info", fields),
            act.Forget(call.id),
        ]
        return out + (self._offer_queues() if freed or self.board.queues else [])

    # ------------------------------------------------------------ records

    def _with_progress(self, call: Call, out: Actions) -> Actions:
        """Save the record of a call in progress whenever its journey grew or its caller's audio
        changed (restart safety: a daemon adopting the call must stop that audio first)."""
        playback = playback_of(call.stage)
        if call.id in self.calls and (len(call.facts), playback) != (call.saved_facts, call.saved_playback):
            call.saved_facts, call.saved_playback = len(call.facts), playback
            out.append(act.SaveRecord(call.id, call.record(self.host)))
        return out


def event_channel(event: ev.Input) -> str | None:
    """The channel an input is about, if any."""
    channel = getattr(event, "channel_id", None)
    return channel if isinstance(channel, str) else None
