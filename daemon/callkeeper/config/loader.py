"""Reads callkeeper.yaml into the frozen `config.model.Config`, or fails with every problem at once.

First the YAML node tree is checked against the shape in `config.json_schema` by `config.shapes`
(keys, types, formats, ranges, `${NAME}` and `<key>_file` secrets); then each section is built into
the model and checked for meaning (time ranges, time zones, numbers, templates); last come the
cross-references (destinations, ring group members, shared numbers, line loops, dialing out, the
API token). Problems are collected, never raised one by one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import string
from collections.abc import Iterable, Mapping
from datetime import date, time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from callkeeper.config import json_schema
from callkeeper.config.model import (
    TEMPLATE_VARIABLES,
    AsteriskConfig,
    BusinessHours,
    Config,
    Destination,
    DestinationKind,
    FollowupText,
    HttpConfig,
    Ivr,
    Line,
    MissedCalls,
    QueueConfig,
    QuietHours,
    RingGroup,
    Secret,
    SmsProvider,
    SmsProviderType,
    Strategy,
    TextLimits,
    TimeRange,
    UnknownNumber,
    UnknownNumberAction,
    User,
    Webhook,
)
from callkeeper.config.shapes import (
    MAX_FILE_BYTES,
    Checker,
    ConfigError,
    ConfigProblem,
    Data,
    Problems,
    Section,
    compose,
    did_you_mean,
    join,
    read_limited,
)
from callkeeper.tollfraud import dial_out_refusal

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "check_config",
    "load_config",
    "load_config_in_thread",
    "load_config_text",
]

_WHOLE_DAY = TimeRange(time(0, 0), time.max)
MIN_TOKEN_LENGTH = 32
_MISSED_CALL_ACTIONS = (DestinationKind.VOICEMAIL, DestinationKind.LINE, DestinationKind.EXTERNAL)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Loads the file at `path`; `${NAME}` comes from `env` (default: the process environment) and
    relative `<key>_file` paths are relative to the file's directory."""
    file = Path(path)
    try:
        text = read_limited(file, MAX_FILE_BYTES)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError([ConfigProblem("", 0, f"cannot read the file: {error}")], str(file)) from None
    return load_config_text(text, str(file), os.environ if env is None else env, base_dir=file.parent)


async def load_config_in_thread(path: str | os.PathLike[str]) -> Config:
    """`load_config` in a worker thread, for a reload: parsing a big file must not stall the event
    loop (and the systemd watchdog with it)."""
    return await asyncio.to_thread(load_config, path)


def load_config_text(
    text: str, source_name: str, env: Mapping[str, str], *, base_dir: Path | None = None
) -> Config:
    checker = Checker(env, base_dir or Path.cwd())
    data = checker.check_file(compose(text, source_name), json_schema.FILE)
    config = _Builder(checker.problems).build(data) if data is not None else None
    if checker.problems.found or config is None:
        raise ConfigError(checker.problems.found, source_name)
    return config


def check_config(path: str | os.PathLike[str]) -> list[str]:
    """`callkeeper check-config FILE`: every problem as `FILE:LINE: PATH: message`, empty if valid."""
    try:
        load_config(path)
    except ConfigError as error:
        return error.lines()
    return []


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return f"known: {listed}" if listed else "none are defined"


def _parse_phone(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None


def _valid_e164(number: str) -> bool:
    parsed = _parse_phone(number)
    return parsed is not None and bool(phonenumbers.is_valid_number(parsed))


def _region(number: str) -> str | None:
    parsed = _parse_phone(number)
    region = phonenumbers.region_code_for_number(parsed) if parsed is not None else None
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _parse_time(text: str) -> time:
    if text == "24:00":
        return time.max
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


# Getters for built sections. The shape check guarantees the type of every present value and fills
# every default, so a defaulted key is always there; only required or default-less keys may be absent.


def _text(section: Section, key: str) -> str:
    value = section[key]
    assert isinstance(value, str), key
    return value


def _int(section: Section, key: str) -> int:
    value = section[key]
    assert isinstance(value, int), key
    return value


def _flag(section: Section, key: str) -> bool:
    value = section[key]
    assert isinstance(value, bool), key
    return value


def _seconds(section: Section, key: str) -> float:
    value = section[key]
    assert isinstance(value, int | float), key
    return float(value)


def _texts(section: Section, key: str) -> list[str]:
    value = section.get(key, [])
    assert isinstance(value, list), key
    return [item for item in value if isinstance(item, str)]


def _list(section: Section, key: str) -> list[Data]:
    value = section.get(key, [])
    assert isinstance(value, list), key
    return value


def _section(section: Section, key: str) -> Section:
    value = section.get(key, {})
    assert isinstance(value, dict), key
    return value


def _opt_text(section: Section, key: str) -> str | None:
    value = section.get(key)
    return value if isinstance(value, str) else None


def _opt_int(section: Section, key: str) -> int | None:
    value = section.get(key)
    return value if isinstance(value, int) else None


def _opt_secret(section: Section, key: str) -> Secret | None:
    value = section.get(key)
    return value if isinstance(value, Secret) else None


def _opt_section(section: Section, key: str) -> Section | None:
    value = section.get(key)
    return value if isinstance(value, dict) else None


class _Builder:
    """Builds the model from checked data and checks its meaning; `lines` and `problems` are shared
    with the shape check, so that problems of meaning are reported at their YAML line too."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.destinations: list[tuple[str, Destination]] = []
        self.dial_outs: list[tuple[str, str]] = []
        self.names: dict[str, set[str]] = {}

    def build(self, root: Section) -> Config | None:
        """The model, checked for meaning; None when a required part is missing."""
        entries = {
            section: {name: _section(_section(root, section), name) for name in _section(root, section)}
            for section in ("users", "ring_groups", "ivrs", "lines", "sms_providers")
        }
        self.names = {section: set(named) for section, named in entries.items()}
        asterisk = self.asterisk(_section(root, "asterisk")) if "asterisk" in root else None
        users = {name: self.user(name, section) for name, section in entries["users"].items()}
        ring_groups = {
            name: self.ring_group(name, section) for name, section in entries["ring_groups"].items()
        }
        ivrs = {name: self.ivr(name, section) for name, section in entries["ivrs"].items()}
        lines = {name: self.line(name, section) for name, section in entries["lines"].items()}
        providers = {
            name: self.sms_provider(name, section) for name, section in entries["sms_providers"].items()
        }
        webhooks = [
            self.webhook(item, f"webhooks.{index}") for index, item in enumerate(_list(root, "webhooks"))
        ]
        self.check_storage(_text(root, "storage"))
        http = self.http(_section(root, "http"))
        unknown_number = _section(root, "unknown_number")
        limits = _section(root, "rate_limits")

        self.check_destinations()
        self.check_numbers(_section(root, "lines"))
        self.check_line_loops()
        if self.dial_outs and asterisk is not None and asterisk.outbound_dial is None:
            uses = ", ".join(f"{path} ({number})" for path, number in self.dial_outs)
            self.problems.add(
                "asterisk.outbound_dial", f"required to dial out to {uses}", self.problems.line_of("asterisk")
            )

        if (
            asterisk is None
            or any(item is None for item in (*users.values(), *ring_groups.values(), *ivrs.values()))
            or any(item is None for item in (*lines.values(), *providers.values(), *webhooks))
        ):
            return None
        return Config(
            asterisk=asterisk,
            lines={name: line for name, line in lines.items() if line is not None},
            storage=_text(root, "storage"),
            http=http,
            users={name: user for name, user in users.items() if user is not None},
            ring_groups={name: group for name, group in ring_groups.items() if group is not None},
            ivrs={name: ivr for name, ivr in ivrs.items() if ivr is not None},
            unknown_number=UnknownNumber(
                action=UnknownNumberAction(_text(unknown_number, "action")),
                hangup_cause=_text(unknown_number, "hangup_cause"),
                context=_text(unknown_number, "context"),
            ),
            sms_providers={name: provider for name, provider in providers.items() if provider is not None},
            webhooks=tuple(webhook for webhook in webhooks if webhook is not None),
            shutdown_grace_seconds=_int(root, "shutdown_grace_seconds"),
            log_level=_text(root, "log_level"),
            external_ring_seconds=_int(root, "external_ring_seconds"),
            rate_limits=TextLimits(
                per_line_per_hour=_int(limits, "per_line_per_hour"),
                global_per_hour=_int(limits, "global_per_hour"),
                daily_cap=_int(limits, "daily_cap"),
            ),
        )

    def asterisk(self, section: Section) -> AsteriskConfig | None:
        self.check_url(_text(section, "url"), "asterisk.url")
        outbound_dial = _opt_text(section, "outbound_dial")
        if outbound_dial is not None:
            self.check_template(outbound_dial, "asterisk.outbound_dial", {"number"}, required="number")
        password = _opt_secret(section, "password")
        if password is None:
            return None
        return AsteriskConfig(
            url=_text(section, "url"),
            username=_text(section, "username"),
            password=password,
            app=_text(section, "app"),
            outbound_dial=outbound_dial,
            connect_timeout_seconds=_seconds(section, "connect_timeout_seconds"),
            request_timeout_seconds=_seconds(section, "request_timeout_seconds"),
            voicemail_spool=_text(section, "voicemail_spool"),
        )

    def http(self, section: Section) -> HttpConfig:
        listen, token = _text(section, "listen"), _opt_secret(section, "token")
        if listen.startswith("["):
            host, _, port_text = listen[1:].partition("]:")
        else:
            host, _, port_text = listen.rpartition(":")
        port = int(port_text)
        if not 1 <= port <= 65535:
            self.problems.add("http.listen", f"port {port} is not between 1 and 65535")
        if listen.startswith("["):
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                self.problems.add("http.listen", f"{host!r} is not an IPv6 address")
        generate = "generate one with `callkeeper new-token` or `openssl rand -hex 32`"
        if token is None:
            # Not when the section or the token itself is wrong already (reported there).
            if not any(p.path == "http" or p.path.startswith("http.token") for p in self.problems.found):
                self.problems.add(
                    "http.token",
                    "required: the API always needs a bearer token of at least "
                    f"{MIN_TOKEN_LENGTH} characters (or token_file); {generate}",
                )
        elif len(token.value) < MIN_TOKEN_LENGTH:
            self.problems.add("http.token", f"too short: at least {MIN_TOKEN_LENGTH} characters ({generate})")
        public_url = _opt_text(section, "public_url")
        if public_url is not None:
            self.check_url(public_url, "http.public_url")
            if urlsplit(public_url).query or urlsplit(public_url).fragment:
                self.problems.add("http.public_url", "a base URL has no query or fragment")
        return HttpConfig(
            host=host,
            port=port,
            token=token,
            names=tuple(_texts(section, "names")),
            public_url=public_url.rstrip("/") if public_url is not None else None,
        )

    def user(self, name: str, section: Section) -> User | None:
        path = f"users.{name}"
        backup_number = _opt_text(section, "backup_number")
        if backup_number is not None:
            self.check_dial_out(backup_number, f"{path}.backup_number")
        inbox_lines = _texts(section, "inbox_lines") if "inbox_lines" in section else None
        for index, line in enumerate(inbox_lines or ()):
            if line not in self.names["lines"]:
                self.problems.add(
                    join(f"{path}.inbox_lines", index),
                    f"{line!r} is not a line{did_you_mean(line, self.names['lines'])}; "
                    f"lines {_known(self.names['lines'])}",
                )
        endpoint = _opt_text(section, "endpoint")
        if endpoint is None:
            return None
        return User(
            name=name,
            endpoint=endpoint,
            backup_number=backup_number,
            web_password_hash=_opt_secret(section, "web_password_hash"),
            inbox_lines=tuple(inbox_lines) if inbox_lines is not None else None,
            ring_seconds=_int(section, "ring_seconds"),
            mailbox=_opt_text(section, "mailbox"),
            ring_when_busy=_flag(section, "ring_when_busy"),
        )

    def ring_group(self, name: str, section: Section) -> RingGroup | None:
        path = f"ring_groups.{name}"
        layers: dict[str, list[str]] = {}
        if "members" in section:
            layers[f"{path}.members"] = _texts(section, "members")
        for index, layer in enumerate(_list(section, "layers")):
            assert isinstance(layer, list)
            layers[f"{path}.layers.{index}"] = [member for member in layer if isinstance(member, str)]
        first_seen: dict[str, str] = {}
        for layer_path, members in layers.items():
            for position, member in enumerate(members):
                member_path = join(layer_path, position)
                if member not in self.names["users"]:
                    self.problems.add(
                        member_path,
                        f"{member!r} is not a user{did_you_mean(member, self.names['users'])}; "
                        f"users {_known(self.names['users'])}",
                    )
                if member in first_seen:
                    self.problems.add(
                        member_path, f"{member!r} is already in this group at {first_seen[member]}"
                    )
                first_seen.setdefault(member, member_path)
        if not layers:
            return None
        queue = _opt_section(section, "queue")
        return RingGroup(
            name=name,
            layers=tuple(tuple(members) for members in layers.values()),
            strategy=Strategy(_text(section, "strategy")),
            ring_seconds=_int(section, "ring_seconds"),
            fishing_mode=_flag(section, "fishing_mode"),
            queue=None
            if queue is None
            else QueueConfig(
                max_wait_seconds=_int(queue, "max_wait_seconds"),
                music_class=_text(queue, "music_class"),
                announce_position_seconds=_opt_int(queue, "announce_position_seconds"),
            ),
            cid_name_prefix=_opt_text(section, "cid_name_prefix"),
            ring_when_busy=_flag(section, "ring_when_busy"),
        )

    def ivr(self, name: str, section: Section) -> Ivr | None:
        path = f"ivrs.{name}"
        options = {
            key: self.destination(value, f"{path}.options.{key}")
            for key, value in _section(section, "options").items()
            if isinstance(value, str)
        }
        no_input, invalid = (self.opt_destination(section, key, path) for key in ("no_input", "invalid"))
        prompt = _opt_text(section, "prompt")
        if prompt is None or "options" not in section:
            return None
        return Ivr(
            name=name,
            prompt=prompt,
            options=options,
            timeout_seconds=_int(section, "timeout_seconds"),
            attempts=_int(section, "attempts"),
            no_input=no_input,
            invalid=invalid,
            invalid_prompt=_text(section, "invalid_prompt"),
        )

    def line(self, name: str, section: Section) -> Line | None:
        path = f"lines.{name}"
        timezone_name = _text(section, "timezone")
        try:
            timezone = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            self.problems.add(
                f"{path}.timezone", f"unknown time zone {timezone_name!r}; use a name like America/New_York"
            )
            timezone = ZoneInfo("UTC")
        business_hours = self.business_hours(section, path)
        after_hours = self.destination(_text(section, "after_hours"), f"{path}.after_hours")
        missed_calls = self.missed_calls(_section(section, "missed_calls"), f"{path}.missed_calls")
        numbers = _texts(section, "numbers") if "numbers" in section else None
        followup = _opt_section(section, "followup_text")
        followup_text = self.followup_text(followup, f"{path}.followup_text", numbers) if followup else None
        route = self.opt_destination(section, "route", path)
        if route is None or numbers is None:
            return None
        return Line(
            name=name,
            numbers=tuple(numbers),
            route=route,
            timezone=timezone,
            business_hours=business_hours,
            after_hours=after_hours,
            welcome=_opt_text(section, "welcome"),
            short_abandon_seconds=_int(section, "short_abandon_seconds"),
            missed_calls=missed_calls,
            followup_text=followup_text,
            cid_name_prefix=_text(section, "cid_name_prefix"),
            language=_opt_text(section, "language"),
        )

    def business_hours(self, section: Section, path: str) -> BusinessHours | None:
        holidays: set[date] = set()
        for index, text in enumerate(_texts(section, "holidays")):
            try:
                holidays.add(date.fromisoformat(text))
            except ValueError:
                self.problems.add(f"{path}.holidays.{index}", f"{text!r} is not a date")
        weekly_spec = _opt_section(section, "business_hours")
        if weekly_spec is None:
            # Holidays alone: open around the clock, except on those days.
            return (
                BusinessHours({day: (_WHOLE_DAY,) for day in range(7)}, frozenset(holidays))
                if holidays
                else None
            )
        weekly: dict[int, list[tuple[TimeRange, str]]] = {}
        for days_key, ranges in weekly_spec.items():
            days_path = f"{path}.business_hours.{days_key}"
            days = self.days(days_key, days_path)
            assert isinstance(ranges, list)
            for index, range_text in enumerate(ranges):
                assert isinstance(range_text, str)
                time_range = self.time_range(range_text, join(days_path, index))
                if time_range is None:
                    continue
                for day in days:
                    weekly.setdefault(day, []).append((time_range, join(days_path, index)))
        self.check_overlaps(weekly)
        return BusinessHours(
            weekly={
                day: tuple(sorted((r for r, _ in entries), key=lambda r: r.start))
                for day, entries in weekly.items()
            },
            holidays=frozenset(holidays),
        )

    def days(self, key: str, path: str) -> list[int]:
        if key == "daily":
            return list(range(7))
        first, _, last = key.partition("-")
        start = json_schema.DAY_KEYS.index(first)
        end = json_schema.DAY_KEYS.index(last or first)
        if end < start:
            self.problems.add(path, f"day range {key!r} runs backwards; days go mon..sun (split it in two)")
        return list(range(start, end + 1))

    def time_range(self, text: str, path: str) -> TimeRange | None:
        start_text, end_text = text.split("-")
        start, end = _parse_time(start_text), _parse_time(end_text)
        if end < start:
            self.problems.add(
                path,
                f"{text!r} crosses midnight; ranges end by 24:00: write {start_text}-24:00 on this day "
                f"and 00:00-{end_text} on the next",
            )
            return None
        if end == start:
            self.problems.add(path, f"{text!r} is empty: a range must end after it starts")
            return None
        return TimeRange(start, end)

    def check_overlaps(self, weekly: Mapping[int, list[tuple[TimeRange, str]]]) -> None:
        overlaps: dict[tuple[str, str], list[str]] = {}
        for day, entries in sorted(weekly.items()):
            latest: tuple[TimeRange, str] | None = None
            for entry in sorted(entries, key=lambda e: (e[0].start, e[1])):
                if latest is not None and entry[0].start < latest[0].end:
                    overlaps.setdefault((entry[1], latest[1]), []).append(json_schema.DAY_KEYS[day])
                if latest is None or entry[0].end > latest[0].end:
                    latest = entry
        for (path, other_path), days in overlaps.items():
            self.problems.add(path, f"overlaps {other_path} on {', '.join(days)}")

    def missed_calls(self, section: Section, path: str) -> MissedCalls:
        action = self.destination(_text(section, "action"), f"{path}.action")
        if action.kind not in _MISSED_CALL_ACTIONS:
            self.problems.add(
                f"{path}.action", f"must be voicemail, line:NAME or external:+E164, not {action}"
            )
        return MissedCalls(
            action=action,
            mailbox=_opt_text(section, "mailbox"),
            press_1_for_voicemail=_flag(section, "press_1_for_voicemail"),
            press_1_prompt=_text(section, "press_1_prompt"),
            press_1_timeout_seconds=_int(section, "press_1_timeout_seconds"),
        )

    def followup_text(self, section: Section, path: str, numbers: list[str] | None) -> FollowupText | None:
        """`numbers` is None when the line's own are wrong: then no default is derived from them."""
        line_e164 = next((number for number in numbers or () if number.startswith("+")), None)
        providers = self.names["sms_providers"]
        provider = _opt_text(section, "provider")
        if provider is None:
            if len(providers) == 1:
                (provider,) = providers
            else:
                reason = "there are several sms_providers" if providers else "add one under sms_providers"
                self.problems.add(f"{path}.provider", f"name the sms provider to send with: {reason}")
        elif provider not in providers:
            self.problems.add(
                f"{path}.provider",
                f"no sms provider {provider!r}{did_you_mean(provider, providers)}; {_known(providers)}",
            )
        sender = _opt_text(section, "from")
        if sender is None:
            sender = line_e164
            if sender is None and numbers is not None:
                self.problems.add(f"{path}.from", "required: the line has no E.164 number to send from")
        elif not _valid_e164(sender):
            self.problems.add(f"{path}.from", f"{sender} is not a valid E.164 number")
        countries = _texts(section, "allowed_countries")
        for index, country in enumerate(countries):
            if country not in phonenumbers.SUPPORTED_REGIONS:
                self.problems.add(
                    f"{path}.allowed_countries.{index}", f"{country!r} is not a known region code"
                )
        if "allowed_countries" not in section:
            region = _region(line_e164 or sender or "")
            if region is None and numbers is not None:
                self.problems.add(
                    f"{path}.allowed_countries", "required: no country follows from the line's numbers"
                )
            countries = [region] if region else []
        quiet = _opt_section(section, "quiet_hours")
        quiet_hours = None
        if quiet is not None and "start" in quiet and "end" in quiet:
            quiet_hours = QuietHours(_parse_time(_text(quiet, "start")), _parse_time(_text(quiet, "end")))
            if quiet_hours.start == quiet_hours.end:
                self.problems.add(f"{path}.quiet_hours", "start and end are the same time")
        messages = {
            kind: _text(_section(section, "messages"), kind) for kind in _section(section, "messages")
        }
        for kind, template in messages.items():
            self.check_template(template, f"{path}.messages.{kind}", TEMPLATE_VARIABLES)
        if provider is None or sender is None:
            return None
        return FollowupText(
            provider=provider,
            sender=sender,
            on=frozenset(_texts(section, "on")),
            delay_seconds=_int(section, "delay_seconds"),
            once_per_caller_hours=_int(section, "once_per_caller_hours"),
            quiet_hours=quiet_hours,
            messages=messages,
            allowed_countries=frozenset(countries),
        )

    def sms_provider(self, name: str, section: Section) -> SmsProvider | None:
        path = f"sms_providers.{name}"
        kind = _opt_text(section, "type")
        if kind is None:
            return None
        provider_type = SmsProviderType(kind)
        variant = json_schema.SMS_PROVIDER.variants[provider_type]
        settings = {key: value for key, value in section.items() if key != "type" and isinstance(value, str)}
        for key in ("url", "base_url"):
            if key in settings:
                self.check_url(settings[key], f"{path}.{key}")
        if "endpoint" in settings:
            self.check_template(settings["endpoint"], f"{path}.endpoint", {"to", "from"}, required="to")
        if any(f.required and f.name not in settings for f in variant.fields if f.name != "type"):
            return None
        return SmsProvider(name=name, type=provider_type, settings=settings)

    def webhook(self, item: Data, path: str) -> Webhook | None:
        assert isinstance(item, dict)
        url = _opt_text(item, "url")
        if url is None:
            return None
        self.check_url(url, f"{path}.url")
        return Webhook(url=url, secret=_opt_secret(item, "secret"), events=frozenset(_texts(item, "events")))

    # -- meaning -----------------------------------------------------------------------------------

    def destination(self, text: str, path: str) -> Destination:
        kind, _, target = text.partition(":")
        destination = Destination(DestinationKind(kind), target or None)
        self.destinations.append((path, destination))
        return destination

    def opt_destination(self, section: Section, key: str, path: str) -> Destination | None:
        text = _opt_text(section, key)
        return None if text is None else self.destination(text, join(path, key))

    def check_destinations(self) -> None:
        sections = {
            DestinationKind.IVR: "ivrs",
            DestinationKind.RING_GROUP: "ring_groups",
            DestinationKind.USER: "users",
            DestinationKind.LINE: "lines",
        }
        for path, destination in self.destinations:
            target = destination.target or ""
            if destination.kind == DestinationKind.EXTERNAL:
                self.check_dial_out(target, path)
            elif destination.kind in sections:
                names = self.names[sections[destination.kind]]
                if target not in names:
                    self.problems.add(
                        path,
                        f"no {destination.kind.value} named {target!r}{did_you_mean(target, names)}; "
                        f"{sections[destination.kind]} {_known(names)}",
                    )

    def check_dial_out(self, number: str, path: str) -> None:
        refusal = dial_out_refusal(number)
        if refusal is not None:
            self.problems.add(path, refusal)
        self.dial_outs.append((path, number))

    def check_numbers(self, lines: Section) -> None:
        owner: dict[str, str] = {}
        for name, section in lines.items():
            assert isinstance(section, dict)
            for index, number in enumerate(_texts(section, "numbers")):
                path = f"lines.{name}.numbers.{index}"
                if number in owner:
                    self.problems.add(path, f"{number} is already used by {owner[number]}")
                owner.setdefault(number, path)

    def check_line_loops(self) -> None:
        """Lines that pass calls on to each other (or themselves) would pass a caller around forever;
        a caller's own choice in an IVR is no loop."""
        lines = self.names["lines"]
        edges: dict[str, list[tuple[str, str]]] = {}
        for path, destination in self.destinations:
            section, _, rest = path.partition(".")
            name, _, key = rest.partition(".")
            target = destination.target or ""
            onward = key in ("route", "after_hours", "missed_calls.action")
            if section == "lines" and onward and destination.kind == DestinationKind.LINE and target in lines:
                edges.setdefault(name, []).append((path, target))
        reach = {name: self.reachable(name, edges) for name in lines}
        reported: set[str] = set()
        for name in sorted(lines):
            if name not in reach[name] or name in reported:
                continue
            loop = {other for other in reach[name] if name in reach[other]}
            reported |= loop
            hops = sorted(
                (path, target) for source in loop for path, target in edges.get(source, []) if target in loop
            )
            listed = ", ".join(f"{path} -> line:{target}" for path, target in hops)
            self.problems.add(hops[0][0], f"lines send calls around in a loop: {listed}")

    @staticmethod
    def reachable(start: str, edges: Mapping[str, list[tuple[str, str]]]) -> set[str]:
        seen: set[str] = set()
        pending = [target for _, target in edges.get(start, [])]
        while pending:
            name = pending.pop()
            if name not in seen:
                seen.add(name)
                pending.extend(target for _, target in edges.get(name, []))
        return seen

    def check_template(
        self, template: str, path: str, allowed: Iterable[str], required: str | None = None
    ) -> None:
        try:
            parsed = [
                (name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
            ]
        except ValueError as error:
            self.problems.add(path, f"bad template: {error} (write a literal brace as {{{{ or }}}})")
            return
        fields = {name for name, _, _ in parsed if name is not None}
        for name, spec, conversion in parsed:
            if spec or conversion:
                # A spec like {line_name:>999999999} would make a gigabyte of text at send time.
                self.problems.add(
                    path, f"write variables plainly, like {{{name}}}: no format specs or conversions"
                )
        allowed = set(allowed)
        for name in sorted(fields - allowed):
            variables = ", ".join(f"{{{variable}}}" for variable in sorted(allowed))
            self.problems.add(path, f"unknown variable {{{name}}}; use {variables}")
        if required is not None and required not in fields:
            self.problems.add(path, f"must contain {{{required}}}")

    def check_url(self, url: str, path: str) -> None:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            self.problems.add(path, "the URL has a bad port")
        if parts.username is not None or parts.password is not None:
            self.problems.add(path, "credentials do not belong in a URL; give them as their own keys")
        elif not parts.hostname:
            self.problems.add(path, "the URL has no host")

    def check_storage(self, url: str) -> None:
        scheme, _, rest = url.partition("://")
        if scheme == "sqlite" and not rest.strip("/"):
            self.problems.add("storage", "sqlite:/// needs a database file path")
        if scheme in ("postgresql", "postgres") and not urlsplit(url).hostname and "host=" not in url:
            self.problems.add("storage", f"{scheme}:// needs a host")
