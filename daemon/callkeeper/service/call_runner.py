"""The asyncio shell around the pure call logic.

Events enter `feed` in arrival order; the engine answers at once (no I/O) and the actions of
each call go to that call's own worker, so one call's ARI requests run in order while calls run
concurrently. The calls' timers live here too; records go to `record_writer.RecordWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime

import structlog

from callkeeper.ari.errors import AriConflict, AriError, AriNotFound, AriUnavailable
from callkeeper.ari.events import AriEvent, StasisStart, UnknownEvent
from callkeeper.ari.rest import AriRestClient
from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.engine import Engine
from callkeeper.config.model import Config
from callkeeper.records import CallRecord, now_utc
from callkeeper.service import reconcile
from callkeeper.service.counters import CallCounters
from callkeeper.service.record_writer import RecordWriter
from callkeeper.service.tasks import Tasks
from callkeeper.service.translate import to_inputs

log = structlog.get_logger(__name__)

# dialplan/callkeeper.conf: reports a handed-off caller's QUEUESTATUS, DIALSTATUS, VMSTATUS at hangup.
HANDOFF_HANDLER = "callkeeper-handoff,s,1"

DIAL_ATTEMPTS = 20
DIAL_RETRY_SECONDS = 0.025
SHUTDOWN_CLEANUP_SECONDS = 5.0
# Failing to undo something on a channel that is already gone is the normal end of a call.
_CLEANUP = (act.Hangup, act.StopRing, act.StopPlayback, act.StopMoh, act.DestroyBridge)


class CallWorker:
    """Runs one call's actions in order, consecutive hangups at once. Between actions it
    waits on a bare future: an asyncio.Event costs more for a single waiter (a new Event binds
    itself to the loop under a global lock, and keeps a list of waiters)."""

    def __init__(self, service: CallService, call_id: str) -> None:
        self.service = service
        self.call_id = call_id
        self.pending: deque[act.Action] = deque()
        self.idle: asyncio.Future[None] | None = None
        self.task = service.tasks.start(self._run(), name=f"call-{call_id}")

    def push(self, action: act.Action) -> None:
        self.pending.append(action)
        idle = self.idle
        if idle is not None and not idle.done():
            idle.set_result(None)

    async def _run(self) -> None:
        # What the ARI client logs while it carries out this call's actions names the call.
        structlog.contextvars.bind_contextvars(call_id=self.call_id)
        loop = asyncio.get_running_loop()
        while True:
            while self.pending:
                action = self.pending.popleft()
                if isinstance(action, act.Forget):
                    self.service.workers.pop(self.call_id, None)
                    return
                if type(action) is act.Hangup and self.pending and type(self.pending[0]) is act.Hangup:
                    # The legs that lost the race, or whose ring time ran out, are hung up at once,
                    # not a round trip each. Not dials: Asterisk runs a socket's requests one by
                    # one, so the first phone would ring only after every leg was created (+1.4 ms
                    # p50 to the first phone's INVITE in bench.sip_load).
                    hangups: list[act.Action] = [action]
                    while self.pending and type(self.pending[0]) is act.Hangup:
                        hangups.append(self.pending.popleft())
                    await asyncio.gather(*(self.service.execute(each) for each in hangups))
                else:
                    await self.service.execute(action)
            self.idle = loop.create_future()
            await self.idle


class CallService:
    def __init__(
        self,
        config: Config,
        rest: AriRestClient,
        writer: RecordWriter,
        host: str = "",
        *,
        clock: Callable[[], datetime] = now_utc,
        on_answered: Callable[[str, datetime], Coroutine[object, object, object]] | None = None,
        on_turn: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.rest = rest
        self.writer = writer
        self.clock = clock
        self.engine = Engine(config, host)
        self.workers: dict[str, CallWorker] = {}
        self.timers: dict[tuple[str, Timer], asyncio.TimerHandle] = {}
        self.counters = CallCounters()
        self.on_answered = on_answered
        self.on_turn = on_turn  # a round-robin group's turn moved: kept in the store
        self.answered: set[str] = set()
        self.tasks = Tasks()  # the calls' workers and the answered notes
        self.no_calls = asyncio.Event()
        self.no_calls.set()
        self.entering: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------ inputs

    def on_event(self, event: AriEvent) -> None:
        """Called by the ARI connection for every event, in arrival order."""
        if isinstance(event, UnknownEvent):
            return
        if self.entering and type(event) is StasisStart and event.channel.id in self.entering:
            self.entering[event.channel.id].set()
        for item in to_inputs(event):
            self.feed(item)
        self.counters.event_lag.observe(max(0.0, (self.clock() - event.timestamp).total_seconds()))

    def feed(self, item: ev.Input) -> None:
        try:
            out = self.engine.handle(item)
        except Exception as error:  # a bug in one call must not take the daemon or the caller down
            call_id = getattr(item, "call_id", None) or self.engine.call_of(getattr(item, "channel_id", ""))
            log.exception("call_logic_error", call_id=call_id, input=type(item).__name__)
            out = self.engine.fail_call(call_id, self.clock(), repr(error)) if call_id else []
        self.dispatch(out)

    def dispatch(self, out: list[act.Action]) -> None:
        if self.engine.calls_in_progress():
            self.no_calls.clear()
        else:
            self.no_calls.set()
        for action in out:
            match action:
                case act.StartTimer(call_id=call_id, name=name, seconds=seconds, token=token):
                    self._cancel_timer(call_id, name)
                    self.timers[(call_id, name)] = asyncio.get_running_loop().call_later(
                        seconds, self._fire, call_id, name, token
                    )
                case act.CancelTimer(call_id=call_id, name=name):
                    self._cancel_timer(call_id, name)
                case act.SaveRecord(record=record, final=final):
                    self.writer.save(record)
                    self._note_answer(record, final)
                    if final:
                        self.counters.count_verdict(record)
                case act.Log():
                    self._log(action)
                case act.TakeTurn(group=group, user=user):
                    if self.on_turn is not None:
                        self.on_turn(group, user)
                case _:
                    if isinstance(action, act.Forget):
                        for key in [k for k in self.timers if k[0] == action.call_id]:
                            self._cancel_timer(*key)
                    worker = self.workers.get(action.call_id)
                    if worker is None:
                        if isinstance(action, act.Forget):
                            continue
                        worker = self.workers[action.call_id] = CallWorker(self, action.call_id)
                    worker.push(action)

    def _note_answer(self, record: CallRecord, final: bool) -> None:
        """A caller who is answered no longer needs the follow-up text of an earlier missed call."""
        if record.customer_answered and record.id not in self.answered and self.on_answered is not None:
            self.answered.add(record.id)
            self.tasks.start(self.on_answered(record.customer, self.clock()), name=f"answered-{record.id}")
        if final:
            self.answered.discard(record.id)

    def _fire(self, call_id: str, name: Timer, token: int) -> None:
        self.timers.pop((call_id, name), None)
        self.feed(ev.TimerFired(call_id, name, token, self.clock()))

    def _cancel_timer(self, call_id: str, name: Timer) -> None:
        handle = self.timers.pop((call_id, name), None)
        if handle is not None:
            handle.cancel()

    def _log(self, action: act.Log) -> None:
        # The caller's channel id is the call's id.
        context = {"call_id": action.call_id, "channel": action.call_id, "line": action.line}
        getattr(log, action.level)(action.event, **context, **action.fields)

    # ------------------------------------------------------------ actions

    async def execute(self, action: act.Action) -> None:
        try:
            await self._execute(action)
        except AriError as error:
            if isinstance(action, _CLEANUP) and isinstance(error, AriNotFound):
                return
            log.debug(
                "ari_action_failed", call_id=action.call_id, action=type(action).__name__, error=str(error)
            )
            self._failed(action, error, not_found=isinstance(error, AriNotFound))
        except Exception as error:  # a malformed ARI reply must not strand the caller: the call moves on
            log.exception("action_error", call_id=action.call_id, action=type(action).__name__)
            self._failed(action, error, not_found=False)

    def _failed(self, action: act.Action, error: Exception, *, not_found: bool) -> None:
        target = str(getattr(action, "leg_id", None) or getattr(action, "channel_id", ""))
        self.feed(
            ev.ActionFailed(
                action.call_id,
                action,
                target,
                not_found,
                str(error) or repr(error),
                self.clock(),
                isinstance(error, AriUnavailable),
            )
        )

    async def _execute(self, action: act.Action) -> None:
        rest = self.rest
        match action:
            case act.Answer(channel_id=channel_id):
                await rest.answer(channel_id)
            case act.Hangup(channel_id=channel_id, reason=reason):
                await rest.hangup(channel_id, reason)
            case act.Ring(channel_id=channel_id):
                await rest.ring(channel_id)
            case act.StopRing(channel_id=channel_id):
                await rest.stop_ring(channel_id)
            case act.Play(channel_id=channel_id, media=media, playback_id=playback_id):
                await rest.play(channel_id, list(media), playback_id)
            case act.StopPlayback(playback_id=playback_id):
                await rest.stop_playback(playback_id)
            case act.StartMoh(channel_id=channel_id, music_class=music_class):
                await rest.start_moh(channel_id, music_class)
            case act.StopMoh(channel_id=channel_id):
                await rest.stop_moh(channel_id)
            case act.DialLeg():
                await self._dial_leg(action)
            case act.BridgeChannels(bridge_id=bridge_id, channel_ids=channel_ids):
                with contextlib.suppress(AriConflict):  # a daemon before us created it, then died
                    await rest.create_bridge(bridge_id, "mixing", name=bridge_id)
                await rest.add_channel(bridge_id, *channel_ids)
            case act.DestroyBridge(bridge_id=bridge_id):
                await rest.destroy_bridge(bridge_id)
            case act.ContinueInDialplan(channel_id=channel_id, context=context, extension=extension):
                await rest.continue_in_dialplan(channel_id, context, extension, action.priority)
            case act.HandOff(channel_id=channel_id, context=context, extension=extension):
                # Still ours to watch once out of the app; the hangup handler reports how it ended.
                await rest.subscribe(self.config.asterisk.app, f"channel:{channel_id}")
                await rest.set_variable(channel_id, "CHANNEL(hangup_handler_push)", HANDOFF_HANDLER)
                await rest.continue_in_dialplan(channel_id, context, extension, action.priority)
            case act.SetVariable(channel_id=channel_id, name=name, value=value):
                await rest.set_variable(channel_id, name, value)

    async def _dial_leg(self, leg: act.DialLeg) -> None:
        # Asterisk builds the From (and P-Asserted-Identity) of a SIP leg from its connected line;
        # `i`: set without sending an update, as the leg is not yet called.
        variables = {"CONNECTEDLINE(num,i)": leg.caller_number, **leg.variables}
        if leg.caller_name:
            variables["CONNECTEDLINE(name,i)"] = leg.caller_name
        self.entering[leg.leg_id] = asyncio.Event()
        try:
            await self.rest.create_channel(
                endpoint=leg.endpoint,
                app=self.config.asterisk.app,
                app_args=f"leg,{leg.call_id}",
                channel_id=leg.leg_id,
                other_channel_id=leg.other_id,
                variables=variables,
            )
            try:
                if leg.watch_other and leg.other_id:
                    await self.rest.subscribe(self.config.asterisk.app, f"channel:{leg.other_id}")
                await self._dial_when_in_stasis(leg)
            except AriError:
                await self._quietly(self.rest.hangup(leg.leg_id))
                raise
        finally:
            del self.entering[leg.leg_id]

    async def _dial_when_in_stasis(self, leg: act.DialLeg) -> None:
        # `channels/create` can answer before the new channel has entered our app; a dial in
        # that moment gets 409 "Channel not in Stasis application" (one in eight dials, and 25 ms
        # more to ring, bench/README.md). Its StasisStart says when; the retries are the fallback.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DIAL_ATTEMPTS * DIAL_RETRY_SECONDS):
                await self.entering[leg.leg_id].wait()
        for attempt in range(DIAL_ATTEMPTS):
            try:
                await self.rest.dial(leg.leg_id, timeout=leg.timeout_seconds)
                return
            except AriConflict:
                if attempt == DIAL_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(DIAL_RETRY_SECONDS)

    # ------------------------------------------------------------ life cycle

    async def reconcile(self, open_records: Sequence[CallRecord] = ()) -> None:
        """After every (re)connect: Asterisk sent nothing while we were away, so compare what it
        has with what we follow. Calls whose channels vanished end, their end not observed.
        Callers in our app that no call follows (a daemon before us died) are adopted with their
        open record and legs; other channels and bridges of ours are ended; the open records
        left are of calls that ended while no daemon watched. The plan is `reconcile.py`'s; each
        step asks the engine again what it follows, as the inputs of the step before change it."""
        channels = await self.rest.list_channels()
        bridges = await self.rest.list_bridges()
        now = self.clock()
        for hangup in reconcile.cut_offs(self.engine.following(), channels, now):
            self.feed(hangup)
        app = self.config.asterisk.app
        following = self.engine.following()
        plan = reconcile.adoptions(app, following, channels, bridges, open_records=open_records, now=now)
        for adopted in plan.adopt:
            self.feed(adopted)
        for orphan in plan.orphans:
            log.info("ending_orphan_channel", channel=orphan)
            await self._quietly(self.rest.hangup(orphan))
        following = self.engine.following()
        for bridge_id in reconcile.orphan_bridges(following, bridges):
            log.info("ending_orphan_bridge", bridge=bridge_id)
            await self._quietly(self.rest.destroy_bridge(bridge_id))
        for record in reconcile.unobserved(following, plan.records):
            self.dispatch(self.engine.close_unobserved(record, now))

    async def _quietly(self, cleanup: Awaitable[None]) -> None:
        """Ending what is gone already is no failure."""
        try:
            await cleanup
        except AriError as error:
            log.debug("cleanup_failed", error=str(error))

    def calls_in_progress(self) -> int:
        return self.engine.calls_in_progress()

    async def drain(self, grace_seconds: float) -> None:
        """Let calls in progress finish (SIGTERM), for at most `grace_seconds`; then end the rest."""
        try:
            async with asyncio.timeout(grace_seconds):
                await self._settled()
        except TimeoutError:
            log.warning("shutdown_grace_expired", calls_in_progress=self.calls_in_progress())
            self.dispatch(self.engine.shut_down(self.clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_CLEANUP_SECONDS):
                    await self._settled()

    async def _settled(self) -> None:
        """No call in progress and every call's actions carried out."""
        await self.no_calls.wait()
        tasks = [w.task for w in self.workers.values()]
        if tasks:
            await asyncio.wait(tasks)

    async def close(self) -> None:
        """The daemon stops: no timer fires any more and what still runs is cancelled."""
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        await self.tasks.close()
