"""The typed, validated configuration: frozen objects built once by `config.loader`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from zoneinfo import ZoneInfo

_UTC = ZoneInfo("UTC")


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


class SmsProviderType(enum.StrEnum):
    TWILIO = "twilio"
    WEBHOOK = "webhook"
    ASTERISK = "asterisk"


# The vocabularies the loader accepts; the daemon's consumers match on the same strings.
HANGUP_CAUSES = frozenset(
    {
        "normal",
        "busy",
        "congestion",
        "no_answer",
        "timeout",
        "rejected",
        "unallocated",
        "normal_unspecified",
        "number_incomplete",
        "codec_mismatch",
        "interworking",
        "failure",
        "answered_elsewhere",
    }
)
LOG_LEVELS = ("debug", "info", "warning", "error")
WEBHOOK_EVENTS = frozenset({"call.started", "call.ended", "followup.sent", "followup.failed"})
FOLLOWUP_EVENTS = frozenset({"missed", "abandoned", "outbound_abandoned"})
TEMPLATE_VARIABLES = frozenset(
    {"caller", "line_name", "line_number", "outcome", "reason", "wait_seconds", "next_open"}
)
DEFAULT_FOLLOWUP_MESSAGES: Mapping[str, str] = {
    "missed": "Sorry we missed your call to {line_name}. We'll call you back soon. Reply STOP to opt out.",
    "abandoned": "We saw you called {line_name}. Call us back at {line_number} or reply here.",
    "outbound_abandoned": "We tried to call you back from {line_name}. Call us at {line_number}.",
    "after_hours": "We're closed now; we open at {next_open}. We'll call you back.",
}


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    url: str
    username: str
    password: Secret
    app: str = "callkeeper"
    outbound_dial: str | None = None
    connect_timeout_seconds: float = 5.0
    request_timeout_seconds: float = 10.0
    voicemail_spool: str = "/var/spool/asterisk/voicemail"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """`names`: host names clients reach the API by (checked against `Host`); `public_url`: the API's
    base URL as seen from outside, through a reverse proxy (what SMS providers sign)."""

    host: str = "127.0.0.1"
    port: int = 8090
    token: Secret | None = None
    names: tuple[str, ...] = ()
    public_url: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    """`ring_seconds`: how long their personal line rings them (and their backup number);
    `mailbox`: where their personal line's missed calls leave messages (default: the line's);
    `ring_when_busy`: rung even while their phone is in use, ringing or on hold (call waiting)."""

    name: str
    endpoint: str
    backup_number: str | None = None
    web_password_hash: Secret | None = None
    inbox_lines: tuple[str, ...] | None = None
    ring_seconds: int = 20
    mailbox: str | None = None
    ring_when_busy: bool = False


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
    cid_name_prefix: str | None = None
    ring_when_busy: bool = False


@dataclass(frozen=True, slots=True)
class Ivr:
    name: str
    prompt: str
    options: Mapping[str, Destination]
    timeout_seconds: int = 5
    attempts: int = 3
    no_input: Destination | None = None
    invalid: Destination | None = None
    invalid_prompt: str = "sound:pm-invalid-option"  # Asterisk core sounds: "that is not a valid option"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """`start` <= wall-clock time < `end` on one day; `end` is `time.max` for a range open until
    midnight (`24:00` in the file). Ranges never cross midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment and (moment < self.end or self.end == time.max)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening ranges per weekday (0 = Monday) in the line's time zone; closed on `holidays`."""

    weekly: Mapping[int, tuple[TimeRange, ...]]
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class MissedCalls:
    """What a line does with a call nobody answered: `voicemail` (default), `line:NAME` or
    `external:+E164`."""

    action: Destination = Destination(DestinationKind.VOICEMAIL)
    mailbox: str | None = None
    press_1_for_voicemail: bool = False
    press_1_prompt: str = "sound:vm-press"
    press_1_timeout_seconds: int = 5


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No texts between `start` and `end` in the line's time zone; may cross midnight (21:00-08:00)."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class FollowupText:
    """A text to the caller after a call `on` one of `FOLLOWUP_EVENTS`. `messages` has a template per
    event plus `after_hours` (the loader fills `DEFAULT_FOLLOWUP_MESSAGES`); `allowed_countries` are
    ISO 3166 region codes the caller's number must belong to."""

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
    timezone: ZoneInfo = _UTC
    business_hours: BusinessHours | None = None
    after_hours: Destination = Destination(DestinationKind.VOICEMAIL)
    welcome: str | None = None
    short_abandon_seconds: int = 0
    missed_calls: MissedCalls = MissedCalls()
    followup_text: FollowupText | None = None
    cid_name_prefix: str = ""
    language: str | None = None

    @property
    def mailbox(self) -> str:
        return self.missed_calls.mailbox or f"{self.name}@default"


@dataclass(frozen=True, slots=True)
class SmsProvider:
    """`settings` by type: twilio `account_sid`, `auth_token` (Secret), `base_url`; webhook `url` and
    optionally `secret` (Secret); asterisk `endpoint`, a template with `{to}` (and optionally `{from}`)."""

    name: str
    type: SmsProviderType
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
class TextLimits:
    """Caps on follow-up texts, counted over all callers."""

    per_line_per_hour: int = 20
    global_per_hour: int = 60
    daily_cap: int = 300


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
    rate_limits: TextLimits = TextLimits()
    external_ring_seconds: int = 30

    def line_for_number(self, number: str) -> Line | None:
        for line in self.lines.values():
            if number in line.numbers:
                return line
        return None
