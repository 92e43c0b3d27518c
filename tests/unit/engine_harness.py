"""Drives the pure engine like the shell does, with a hand-moved clock, for unit tests and replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.engine import Engine
from callkeeper.config.model import (
    AsteriskConfig,
    Config,
    Destination,
    DestinationKind,
    Ivr,
    Line,
    QueueConfig,
    RingGroup,
    Secret,
    Strategy,
    User,
)
from callkeeper.records import CallRecord

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York


def dest(text: str) -> Destination:
    kind, _, target = text.partition(":")
    return Destination(DestinationKind(kind), target or None)


def make_config(**lines: Line) -> Config:
    users = {name: User(name, f"Local/{name}@user-answer") for name in ("alice", "bob", "carol", "dave")}
    users["alice"] = User("alice", "Local/alice@user-answer", backup_number="+16465550111")
    groups = {
        "sales": RingGroup("sales", (("alice", "bob"), ("carol",)), ring_seconds=20),
        "seq": RingGroup("seq", (("alice", "bob", "carol"),), strategy=Strategy.SEQUENTIAL, ring_seconds=10),
        "rr": RingGroup("rr", (("alice", "bob", "carol"),), strategy=Strategy.ROUND_ROBIN, ring_seconds=10),
        "queued": RingGroup("queued", (("alice", "bob"),), queue=QueueConfig(max_wait_seconds=60)),
        "fishing": RingGroup(
            "fishing", (("alice",),), fishing_mode=True, queue=QueueConfig(max_wait_seconds=60)
        ),
        "fishing_noq": RingGroup("fishing_noq", (("alice",),), fishing_mode=True),
    }
    ivrs = {
        "menu": Ivr(
            "menu",
            "sound:menu",
            {
                "1": dest("ring_group:sales"),
                "2": dest("user:alice"),
                "9": dest("voicemail"),
                "0": dest("dead_end"),
            },
            timeout_seconds=5,
            attempts=2,
        )
    }
    if not lines:
        lines = {"main": Line("main", ("+12125550100",), dest("ring_group:sales"))}
    return Config(
        asterisk=AsteriskConfig(
            "http://127.0.0.1:8088", "callkeeper", Secret("x"), outbound_dial="PJSIP/{number}@trunk"
        ),
        lines=lines,
        users=users,
        ring_groups=groups,
        ivrs=ivrs,
    )


def line(route: str, **kwargs: object) -> Line:
    return Line("main", ("+12125550100",), dest(route), **kwargs)  # type: ignore[arg-type]


@dataclass
class Harness:
    config: Config
    now: datetime = T0
    engine: Engine = field(init=False)
    actions: list[act.Action] = field(default_factory=list)
    records: dict[str, CallRecord] = field(default_factory=dict)
    timers: dict[tuple[str, Timer], tuple[datetime, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engine = Engine(self.config, "test")

    def feed(self, item: ev.Input) -> list[act.Action]:
        out = self.engine.handle(item)
        for action in out:
            match action:
                case act.StartTimer(call_id=c, name=n, seconds=s, token=t):
                    self.timers[(c, n)] = (self.now + timedelta(seconds=s), t)
                case act.CancelTimer(call_id=c, name=n):
                    self.timers.pop((c, n), None)
                case act.SaveRecord(record=record):
                    self.records[record.id] = record
        self.actions += out
        return out

    def advance(self, seconds: float) -> None:
        """Move the clock, firing due timers in order."""
        end = self.now + timedelta(seconds=seconds)
        while True:
            due = sorted((when, key) for key, (when, _) in self.timers.items() if when <= end)
            if not due:
                break
            when, key = due[0]
            _, token = self.timers.pop(key)
            self.now = when
            out = self.feed(ev.TimerFired(key[0], key[1], token, when))
            # Asterisk carries out the hangups of the legs the engine still follows.
            for action in out:
                if isinstance(action, act.Hangup) and self.engine.call_of(action.channel_id):
                    self.feed(ev.ChannelHungUp(action.channel_id, when))
        self.now = end

    def arrive(self, call_id: str = "c1", dialed: str = "+12125550100", caller: str = "+14155550111") -> None:
        self.feed(ev.CallArrived(call_id, caller, "", dialed, self.now))

    def hangup(self, channel_id: str) -> list[act.Action]:
        return self.feed(ev.ChannelHungUp(channel_id, self.now))

    def playback_done(self) -> None:
        playing = [a for a in self.actions if isinstance(a, act.Play)]
        self.feed(ev.PlaybackDone(playing[-1].playback_id, self.now))

    def dialed_legs(self) -> list[act.DialLeg]:
        return [a for a in self.actions if isinstance(a, act.DialLeg)]

    def leg(self, endpoint_part: str) -> str:
        legs = [d.leg_id for d in self.dialed_legs() if endpoint_part in d.endpoint]
        assert legs, f"no leg dialed to {endpoint_part}"
        return legs[-1]

    def answer(self, endpoint_part: str, *, bridged: bool = True) -> None:
        """The leg answers and, unless not `bridged`, Asterisk carries out the bridging asked for."""
        out = self.feed(ev.LegProgress(self.leg(endpoint_part), "ANSWER", self.now))
        if bridged:
            self.bridge(out)

    def bridge(self, out: list[act.Action]) -> None:
        for action in out:
            if isinstance(action, act.BridgeChannels):
                for channel_id in action.channel_ids:
                    self.feed(ev.ChannelBridged(channel_id, action.bridge_id, self.now))

    def verdict(self, call_id: str = "c1") -> tuple[str, str]:
        record = self.records[call_id]
        assert record.outcome is not None and record.reason is not None, record
        return record.outcome.value, record.reason.value
