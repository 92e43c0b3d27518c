"""The schema of callkeeper.yaml, written once as shapes and rendered as JSON Schema.

`config.loader` checks a file against `FILE` (keys, types, required keys, formats, ranges) before
it checks meaning; `json_schema()` renders the same shape as a JSON Schema (draft 2020-12) for
editors. The committed `callkeeper.schema.json` next to this module is regenerated with
`python -m callkeeper.config.json_schema`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from callkeeper.config import model
from callkeeper.config.shapes import (
    NAME,
    Field,
    Flag,
    Integer,
    ListOf,
    MapOf,
    Number,
    Obj,
    Shape,
    Tagged,
    Text,
)

SCHEMA_PATH = Path(__file__).with_name("callkeeper.schema.json")

# Formats, as regular expressions that both Python and ECMA-262 read the same way (full match).
E164 = r"\+[1-9][0-9]{1,14}"
NUMBER = rf"{E164}|[0-9]+"
HHMM = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
TIME_RANGE = rf"{HHMM}-(?:{HHMM}|24:00)"
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = "|".join(DAY_KEYS)
DAYS = rf"(?:{DAY})(?:-(?:{DAY}))?|daily"
DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DTMF = r"[0-9*#]"
DIALPLAN_TARGET = r"[A-Za-z0-9_+*#.-]+,[A-Za-z0-9_+*#.-]+(?:,[0-9]+)?"
DESTINATION = (
    rf"voicemail|dead_end|(?:ivr|ring_group|user|line):{NAME}|external:\+[0-9]+|dialplan:{DIALPLAN_TARGET}"
)
MEDIA = r"(?:sound|recording|number|digits|characters|tone):\S+"
URL = r"https?://\S+"
ABSOLUTE_PATH = r"/.*"
LISTEN = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}"
ENDPOINT = r"[A-Za-z][A-Za-z0-9_]*/\S+"
HOST_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
MAILBOX = r"[^@\s]+(?:@[^@\s]+)?"
REGION = r"[A-Z]{2}"
ENV_REFERENCE = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"


def _default(cls: type[Any], name: str) -> Any:
    """The model's default for `cls.name`, written as it would be in the file."""
    found = next(f for f in dataclasses.fields(cls) if f.name == name)
    assert found.default is not dataclasses.MISSING, name
    return _as_file_value(found.default)


def _as_file_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, model.Destination):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def _choices(enum_type: type[enum.StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum_type)


DESTINATION_TEXT = Text(
    DESTINATION,
    "a destination: ivr:NAME, ring_group:NAME, user:NAME, line:NAME, external:+E164, voicemail or dead_end",
)
MEDIA_TEXT = Text(MEDIA, "a sound to play, like sound:NAME")
NAME_TEXT = Text(NAME, "a name of letters, digits, '-' and '_'")
# Ranges: wide enough for any PBX, narrow enough that a slip of the keyboard (10^30 s) is caught.
TIMEOUT = Number(maximum=300)
RING_SECONDS = Integer(1, 600)
WAIT_SECONDS = Integer(1, 4 * 3600)
PROMPT_SECONDS = Integer(1, 60)
COUNT = Integer(0, 100_000)

ASTERISK = Obj(
    (
        Field(
            "url",
            Text(URL, "an http:// or https:// URL"),
            default="http://127.0.0.1:8088",
            doc="Asterisk's HTTP server (ARI).",
        ),
        Field("username", Text(), default="callkeeper", doc="ARI user (ari.conf)."),
        Field("password", Text(secret=True), required=True, doc="ARI password."),
        Field(
            "app",
            NAME_TEXT,
            default=_default(model.AsteriskConfig, "app"),
            doc="The Stasis application the dialplan sends calls to.",
        ),
        Field(
            "outbound_dial",
            Text(),
            doc="Dial string for external numbers, with {number}, like "
            "PJSIP/{number}@trunk. Required when any external destination or backup number is used.",
        ),
        Field(
            "connect_timeout_seconds",
            TIMEOUT,
            default=_default(model.AsteriskConfig, "connect_timeout_seconds"),
        ),
        Field(
            "request_timeout_seconds",
            TIMEOUT,
            default=_default(model.AsteriskConfig, "request_timeout_seconds"),
        ),
        Field(
            "voicemail_spool",
            Text(ABSOLUTE_PATH, "an absolute path"),
            default=_default(model.AsteriskConfig, "voicemail_spool"),
            doc="app_voicemail's spool (holding <context>/<mailbox>/INBOX/) as this host sees it: the "
            "inbox plays voicemail messages from there.",
        ),
    ),
    doc="How to reach Asterisk's REST interface.",
)

HTTP = Obj(
    (
        Field(
            "listen",
            Text(LISTEN, "HOST:PORT or [IPv6]:PORT"),
            default=f"{_default(model.HttpConfig, 'host')}:{_default(model.HttpConfig, 'port')}",
            doc="Address of the API.",
        ),
        Field(
            "token",
            Text(secret=True),
            doc="Bearer token the API always requires, at least 32 characters: generate one with "
            "`callkeeper new-token` or `openssl rand -hex 32`.",
        ),
        Field(
            "names",
            ListOf(Text(HOST_NAME, "a host name like pbx.example.com")),
            doc="Host names clients use to reach the API; requests naming another host are refused "
            "(DNS rebinding). The listen address, and localhost on loopback, are always accepted.",
        ),
        Field(
            "public_url",
            Text(URL, "an http:// or https:// URL"),
            doc="The API's base URL as the outside sees it through a reverse proxy, like "
            "https://pbx.example.com/callkeeper: SMS providers sign inbound texts for this URL.",
        ),
    ),
    doc="The HTTP API and metrics.",
)

USER = Obj(
    (
        Field("endpoint", Text(ENDPOINT, "a channel endpoint like PJSIP/alice"), required=True),
        Field(
            "backup_number",
            Text(E164, "an E.164 number like +12125550100"),
            doc="Dialed out (through outbound_dial) when the endpoint is unreachable.",
        ),
        Field(
            "web_password_hash",
            Text(secret=True),
            doc="Lets the user sign in to the inbox page; made by `callkeeper hash-password`.",
        ),
        Field(
            "inbox_lines",
            ListOf(NAME_TEXT, min_items=1),
            doc="The lines whose missed calls this user sees in the inbox (default: every line).",
        ),
        Field(
            "ring_seconds",
            RING_SECONDS,
            default=_default(model.User, "ring_seconds"),
            doc="How long their personal line (user:NAME) rings them, and then their backup number.",
        ),
        Field(
            "mailbox",
            Text(MAILBOX, "a mailbox like 1000@default"),
            doc="Their personal line's missed calls go here (default: the line's mailbox).",
        ),
        Field(
            "ring_when_busy",
            Flag(),
            default=_default(model.User, "ring_when_busy"),
            doc="Ring them even while their phone is in use, ringing or on hold (call waiting).",
        ),
    ),
)

QUEUE = Obj(
    (
        Field("max_wait_seconds", WAIT_SECONDS, default=_default(model.QueueConfig, "max_wait_seconds")),
        Field("music_class", Text(), default=_default(model.QueueConfig, "music_class")),
        Field("announce_position_seconds", Integer(1, 3600), doc="Tell callers their position this often."),
    ),
    doc="Callers wait here while every member is busy.",
)

RING_GROUP = Obj(
    (
        Field(
            "strategy", Text(choices=_choices(model.Strategy)), default=_default(model.RingGroup, "strategy")
        ),
        Field(
            "ring_seconds",
            RING_SECONDS,
            default=_default(model.RingGroup, "ring_seconds"),
            doc="How long each layer (or member, when sequential) rings.",
        ),
        Field("members", ListOf(NAME_TEXT, min_items=1), doc="Users, as a single layer."),
        Field(
            "layers",
            ListOf(ListOf(NAME_TEXT, min_items=1), min_items=1),
            doc="Users in layers rung one after another.",
        ),
        Field("fishing_mode", Flag(), default=_default(model.RingGroup, "fishing_mode")),
        Field("queue", QUEUE),
        Field(
            "cid_name_prefix",
            Text(),
            doc="Put before the caller's name on the members' phones (default: the line's prefix).",
        ),
        Field(
            "ring_when_busy",
            Flag(),
            default=_default(model.RingGroup, "ring_when_busy"),
            doc="Ring members even while their phone is in use, ringing or on hold.",
        ),
    ),
    one_of=("members", "layers"),
)

IVR = Obj(
    (
        Field("prompt", MEDIA_TEXT, required=True),
        Field("timeout_seconds", PROMPT_SECONDS, default=_default(model.Ivr, "timeout_seconds")),
        Field("attempts", Integer(1, 10), default=_default(model.Ivr, "attempts")),
        Field(
            "options",
            MapOf(DESTINATION_TEXT, key=Text(DTMF, "a single DTMF key 0-9, * or #"), min_items=1),
            required=True,
            doc="DTMF key to destination.",
        ),
        Field("no_input", DESTINATION_TEXT, doc="Where to go after the last attempt without input."),
        Field("invalid", DESTINATION_TEXT, doc="Where to go after the last invalid key."),
        Field("invalid_prompt", MEDIA_TEXT, default=_default(model.Ivr, "invalid_prompt")),
    ),
)

MISSED_CALLS = Obj(
    (
        Field(
            "action",
            DESTINATION_TEXT,
            default=_default(model.MissedCalls, "action"),
            doc="voicemail, line:NAME or external:+E164.",
        ),
        Field("mailbox", Text(MAILBOX, "a mailbox like 1000@default"), doc="Default: LINE@default."),
        Field("press_1_for_voicemail", Flag(), default=_default(model.MissedCalls, "press_1_for_voicemail")),
        Field("press_1_prompt", MEDIA_TEXT, default=_default(model.MissedCalls, "press_1_prompt")),
        Field(
            "press_1_timeout_seconds",
            PROMPT_SECONDS,
            default=_default(model.MissedCalls, "press_1_timeout_seconds"),
        ),
    ),
    doc="What happens to a call nobody answered.",
)

HHMM_TEXT = Text(HHMM, "a time HH:MM")

MESSAGES = Obj(
    tuple(Field(kind, Text(), default=text) for kind, text in model.DEFAULT_FOLLOWUP_MESSAGES.items()),
    doc="Templates; variables: " + ", ".join(f"{{{v}}}" for v in sorted(model.TEMPLATE_VARIABLES)),
)

FOLLOWUP_TEXT = Obj(
    (
        Field(
            "on",
            ListOf(Text(choices=tuple(sorted(model.FOLLOWUP_EVENTS))), min_items=1),
            default=_default(model.FollowupText, "on"),
        ),
        Field(
            "from",
            Text(E164, "an E.164 number like +12125550100"),
            doc="Sender number. Default: the line's first E.164 number.",
        ),
        Field("provider", NAME_TEXT, doc="A name from sms_providers. Default: the only provider."),
        Field("delay_seconds", Integer(0, 24 * 3600), default=_default(model.FollowupText, "delay_seconds")),
        Field(
            "once_per_caller_hours",
            Integer(0, 365 * 24),
            default=_default(model.FollowupText, "once_per_caller_hours"),
        ),
        Field(
            "quiet_hours",
            Obj((Field("start", HHMM_TEXT, required=True), Field("end", HHMM_TEXT, required=True))),
            doc="No texts in this window (line's time zone); texts wait for its end.",
        ),
        Field(
            "allowed_countries",
            ListOf(Text(REGION, "an ISO 3166 region code like US"), min_items=1),
            doc="Only text callers from these regions. Default: the region of the line's first E.164 number.",
        ),
        Field("messages", MESSAGES, default=MESSAGES.defaults()),
    ),
    doc="Text the caller after a missed or abandoned call.",
)

LINE = Obj(
    (
        Field(
            "numbers",
            ListOf(Text(NUMBER, "an E.164 number like +12125550100 or an extension"), min_items=1),
            required=True,
            doc="Dialed numbers (DIDs or extensions) that reach this line.",
        ),
        Field("route", DESTINATION_TEXT, required=True, doc="Where calls go during business hours."),
        Field("timezone", Text(), default="UTC", doc="IANA time zone, like America/New_York."),
        Field(
            "business_hours",
            MapOf(
                ListOf(Text(TIME_RANGE, "a range HH:MM-HH:MM")),
                key=Text(DAYS, "a day (mon..sun), a range like mon-fri, or daily"),
            ),
            doc="Opening ranges per day; no business_hours means always open.",
        ),
        Field("holidays", ListOf(Text(DATE, "a date YYYY-MM-DD")), doc="Closed all day."),
        Field("after_hours", DESTINATION_TEXT, default=_default(model.Line, "after_hours")),
        Field("welcome", MEDIA_TEXT, doc="Played to every caller first."),
        Field(
            "short_abandon_seconds",
            Integer(0, 600),
            default=_default(model.Line, "short_abandon_seconds"),
            doc="Callers who hang up this quickly are counted as short.",
        ),
        Field("missed_calls", MISSED_CALLS, default=MISSED_CALLS.defaults()),
        Field("followup_text", FOLLOWUP_TEXT),
        Field(
            "cid_name_prefix",
            Text(),
            default=_default(model.Line, "cid_name_prefix"),
            doc='Put before the caller\'s name on the phones it rings, like "Sales: ".',
        ),
        Field(
            "language",
            Text(r"[a-z]{2,3}(?:_[A-Za-z]{2,4})?", "a language like fr or pt_BR"),
            doc="The caller's channel language: Asterisk plays its prompts and says numbers in it.",
        ),
    ),
)

UNKNOWN_NUMBER = Obj(
    (
        Field(
            "action",
            Text(choices=_choices(model.UnknownNumberAction)),
            default=_default(model.UnknownNumber, "action"),
        ),
        Field(
            "hangup_cause",
            Text(choices=tuple(sorted(model.HANGUP_CAUSES))),
            default=_default(model.UnknownNumber, "hangup_cause"),
        ),
        Field(
            "context",
            Text(),
            default=_default(model.UnknownNumber, "context"),
            doc="Dialplan context for action: dialplan.",
        ),
    ),
    doc="Calls to a number no line has.",
)

WEBHOOK = Obj(
    (
        Field("url", Text(URL, "an http:// or https:// URL"), required=True),
        Field("secret", Text(secret=True), doc="Signs each delivery."),
        Field(
            "events",
            ListOf(Text(choices=tuple(sorted(model.WEBHOOK_EVENTS))), min_items=1),
            default=_default(model.Webhook, "events"),
        ),
    ),
)

_PROVIDER_TYPE = Field("type", Text(choices=_choices(model.SmsProviderType)), required=True)

SMS_PROVIDER = Tagged(
    "type",
    {
        model.SmsProviderType.TWILIO: Obj(
            (
                _PROVIDER_TYPE,
                Field("account_sid", Text(), required=True),
                Field("auth_token", Text(secret=True), required=True),
                Field("base_url", Text(URL, "an http:// or https:// URL"), default="https://api.twilio.com"),
            )
        ),
        model.SmsProviderType.WEBHOOK: Obj(
            (
                _PROVIDER_TYPE,
                Field("url", Text(URL, "an http:// or https:// URL"), required=True),
                Field("secret", Text(secret=True)),
            )
        ),
        model.SmsProviderType.ASTERISK: Obj(
            (
                _PROVIDER_TYPE,
                Field(
                    "endpoint",
                    Text(),
                    required=True,
                    doc="Message technology URI with {to}, like pjsip:trunk/{to}.",
                ),
            )
        ),
    },
)

RATE_LIMITS = Obj(
    tuple(
        Field(f.name, COUNT, default=_default(model.TextLimits, f.name))
        for f in dataclasses.fields(model.TextLimits)
    ),
    doc="Caps on follow-up texts: per line per hour, all lines per hour, all lines per day.",
)

FILE = Obj(
    (
        Field("asterisk", ASTERISK, required=True),
        Field(
            "storage",
            Text(r"(?:sqlite|postgres|postgresql)://.*", "a sqlite:///PATH or postgresql:// URL"),
            default=_default(model.Config, "storage"),
        ),
        Field("http", HTTP, default=HTTP.defaults()),
        Field("users", MapOf(USER)),
        Field("ring_groups", MapOf(RING_GROUP)),
        Field("ivrs", MapOf(IVR)),
        Field("lines", MapOf(LINE, min_items=1), required=True),
        Field("unknown_number", UNKNOWN_NUMBER, default=UNKNOWN_NUMBER.defaults()),
        Field("sms_providers", MapOf(SMS_PROVIDER)),
        Field("webhooks", ListOf(WEBHOOK)),
        Field("rate_limits", RATE_LIMITS, default=RATE_LIMITS.defaults()),
        Field(
            "shutdown_grace_seconds",
            Integer(0, 3600),
            default=_default(model.Config, "shutdown_grace_seconds"),
            doc="How long calls in progress may finish on shutdown.",
        ),
        Field("log_level", Text(choices=model.LOG_LEVELS), default=_default(model.Config, "log_level")),
        Field(
            "external_ring_seconds",
            RING_SECONDS,
            default=_default(model.Config, "external_ring_seconds"),
            doc="How long an outside number (external:+E164) rings.",
        ),
    ),
)


def json_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "callkeeper configuration",
        **_render(FILE),
    }


def render() -> str:
    """The text of the committed schema file."""
    return json.dumps(json_schema(), indent=2) + "\n"


def _render(shape: Shape) -> dict[str, Any]:
    match shape:
        case Text():
            return _render_text(shape)
        case Integer(minimum=minimum, maximum=maximum):
            return {"type": "integer", "minimum": minimum, "maximum": maximum}
        case Number(maximum=maximum):
            return {"type": "number", "exclusiveMinimum": 0, "maximum": maximum}
        case Flag():
            return {"type": "boolean"}
        case ListOf(item=item, min_items=min_items):
            return {"type": "array", "items": _render(item)} | ({"minItems": min_items} if min_items else {})
        case MapOf(value=value, key=key, min_items=min_items):
            rendered = {
                "type": "object",
                "propertyNames": _render_text(key, substituted=False),
                "additionalProperties": _render(value),
            }
            return rendered | ({"minProperties": min_items} if min_items else {})
        case Obj():
            return _render_obj(shape)
        case Tagged(tag=tag, variants=variants):
            return {
                "type": "object",
                "required": [tag],
                "properties": {tag: {"enum": list(variants)}},
                "oneOf": [_render_obj(variant, {tag: name}) for name, variant in variants.items()],
            }
    raise AssertionError(shape)


def _render_text(text: Text, substituted: bool = True) -> dict[str, Any]:
    """`substituted`: a value (not a key), where a `${NAME}` reference is checked after substitution."""
    rendered: dict[str, Any] = {"type": "string"}
    if text.choices:
        rendered["enum"] = list(text.choices)
    if text.pattern is not None:
        rendered["pattern"] = f"^(?:{text.pattern})$" + (f"|{ENV_REFERENCE}" if substituted else "")
    return rendered


def _render_obj(obj: Obj, constants: Mapping[str, str] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    constraints: list[dict[str, Any]] = []
    for f in obj.fields:
        rendered = {"const": constants[f.name]} if constants and f.name in constants else _render(f.shape)
        if f.doc:
            rendered["description"] = f.doc
        if f.default is not None:
            rendered["default"] = f.default
        properties[f.name] = rendered
        if isinstance(f.shape, Text) and f.shape.secret:
            file_key = f"{f.name}_file"
            properties[file_key] = {"type": "string", "description": f"A file holding the {f.name}."}
            both = [{"required": [f.name]}, {"required": [file_key]}]
            constraints.append({"oneOf": both} if f.required else {"not": {"required": [f.name, file_key]}})
        elif f.required:
            required.append(f.name)
    if obj.one_of:
        constraints.append({"oneOf": [{"required": [name]} for name in obj.one_of]})
    rendered_obj: dict[str, Any] = {"type": "object"}
    if obj.doc:
        rendered_obj["description"] = obj.doc
    rendered_obj["properties"] = properties
    if required:
        rendered_obj["required"] = required
    rendered_obj["additionalProperties"] = False
    if len(constraints) == 1:
        rendered_obj |= constraints[0]
    elif constraints:
        rendered_obj["allOf"] = constraints
    return rendered_obj


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
