"""The typed, validated configuration: frozen objects built once by `config.loader`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from zoneinfo import ZoneInfo


class Secret(str):
    """A credential: its repr never shows the value, so it cannot leak into a log line."""

    def __repr__(self) -> str:
        return "Secret('***')"

    @property
    def value(self) -> str:
        return str.__str__(self)


class DestinationKind(enum.StrEnum):
    IVR = "ivr"
    RING_GROUP = "ring_group"
    USER = "user"
    LINE = "line"
    EXTERNAL = "external"
    VOICEMAIL = "voicemail"
    DEAD_END = "dead_end"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a call goes next: `ivr:NAME`, `ring_group:NAME`, `user:NAME`, `line:NAME`,
    `external:+E164`, `voicemail` or `dead_end`. `target` is None for the last two."""

    kind: DestinationKind
    target: str | None = None

    def __str__(self) -> str:
        return self.kind.value if self.target is None else f"{self.kind.value}:{self.target}"


class Strategy(enum.StrEnum):
    RING_ALL = "ring_all"
    SEQUENTIAL = "sequential"
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"


class UnknownNumberAction(enum.StrEnum):
    HANGUP = "hangup"
    DIALPLAN = "dialplan"


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    url: str
    username: str
    password: Secret
    app: str = "callkeeper"
    outbound_dial: str | None = None
    connect_timeout_seconds: float = 5.0
    request_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8090
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class User:
    name: str
    endpoint: str
    backup_number: str | None = None


@dataclass(frozen=True, slots=True)
class QueueConfig:
    max_wait_seconds: int = 60
    music_class: str = "default"
    announce_position_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class RingGroup:
    name: str
    layers: tuple[tuple[str, ...], ...]
    strategy: Strategy = Strategy.RING_ALL
    ring_seconds: int = 20
    fishing_mode: bool = False
    queue: QueueConfig | None = None


@dataclass(frozen=True, slots=True)
class Ivr:
    name: str
    prompt: str
    options: Mapping[str, Destination]
    timeout_seconds: int = 5
    attempts: int = 3
    no_input: Destination | None = None
    invalid: Destination | None = None
    invalid_prompt: str = "sound:option-is-invalid"


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening ranges per weekday (0 = Monday) in the line's time zone; closed on `holidays`."""

    weekly: Mapping[int, tuple[TimeRange, ...]]
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class MissedCalls:
    """What a line does with a call nobody answered: `voicemail` (default), `line:NAME` or `external:+E164`."""

    action: Destination = Destination(DestinationKind.VOICEMAIL)
    mailbox: str | None = None
    press_1_for_voicemail: bool = False
    press_1_prompt: str = "sound:vm-press"
    press_1_timeout_seconds: int = 5


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class FollowupText:
    provider: str
    sender: str
    on: frozenset[str] = frozenset({"missed", "abandoned"})
    delay_seconds: int = 60
    once_per_caller_hours: int = 24
    quiet_hours: QuietHours | None = None
    messages: Mapping[str, str] = field(default_factory=dict)
    allowed_countries: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    numbers: tuple[str, ...]
    route: Destination
    timezone: ZoneInfo = ZoneInfo("UTC")
    business_hours: BusinessHours | None = None
    after_hours: Destination = Destination(DestinationKind.VOICEMAIL)
    welcome: str | None = None
    short_abandon_seconds: int = 0
    missed_calls: MissedCalls = MissedCalls()
    followup_text: FollowupText | None = None

    @property
    def mailbox(self) -> str:
        return self.missed_calls.mailbox or f"{self.name}@default"


@dataclass(frozen=True, slots=True)
class SmsProvider:
    name: str
    type: str
    settings: Mapping[str, str | Secret]


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: Secret | None = None
    events: frozenset[str] = frozenset({"call.ended"})


@dataclass(frozen=True, slots=True)
class UnknownNumber:
    action: UnknownNumberAction = UnknownNumberAction.HANGUP
    hangup_cause: str = "unallocated"
    context: str = "callkeeper-fallback"


@dataclass(frozen=True, slots=True)
class Config:
    asterisk: AsteriskConfig
    lines: Mapping[str, Line]
    storage: str = "sqlite:///var/lib/callkeeper/callkeeper.db"
    http: HttpConfig = HttpConfig()
    users: Mapping[str, User] = field(default_factory=dict)
    ring_groups: Mapping[str, RingGroup] = field(default_factory=dict)
    ivrs: Mapping[str, Ivr] = field(default_factory=dict)
    unknown_number: UnknownNumber = UnknownNumber()
    sms_providers: Mapping[str, SmsProvider] = field(default_factory=dict)
    webhooks: tuple[Webhook, ...] = ()
    shutdown_grace_seconds: int = 30
    log_level: str = "info"

    def line_for_number(self, number: str) -> Line | None:
        for line in self.lines.values():
            if number in line.numbers:
                return line
        return None
