"""Who may get a follow-up text, when, and with which words. Pure: no clock, no store, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from callkeeper.calls.hours import format_opening, next_open
from callkeeper.config.model import DEFAULT_FOLLOWUP_MESSAGES, Config, FollowupText, Line, QuietHours
from callkeeper.records import CallRecord, Direction, Outcome, Reason

# Caller IDs that name nobody: what Asterisk and trunks put in CALLERID(num) when it is withheld.
ANONYMOUS_CALLERS = frozenset(
    {"", "anonymous", "unknown", "unavailable", "withheld", "restricted", "private", "blocked"}
)
# Longer digit strings are numbers; these are extensions of the PBX itself.
MAX_EXTENSION_DIGITS = 6
TEXTABLE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a caller is not texted. `held` refusals may be released by an operator (the text is complete);
    the others are cancelled for good."""

    reason: str
    held: bool = False


@dataclass(frozen=True, slots=True)
class Textable:
    """A caller's number as the provider gets it (E.164) and its ISO region."""

    number: str
    region: str


def text_event(record: CallRecord) -> str | None:
    """The `followup_text.on` event a finished call is, or None if no text follows that kind of call."""
    if record.outcome not in (Outcome.MISSED, Outcome.ABANDONED):
        return None
    if record.direction is Direction.OUTBOUND:
        return "outbound_abandoned"
    return record.outcome.value


def not_followed_up(record: CallRecord) -> Refusal | None:
    """Calls that never get a text whatever the line says: nobody was meant to take them."""
    if record.outcome is Outcome.IGNORED:
        return Refusal("ignored")
    if record.reason is Reason.DEAD_END:
        return Refusal("dead_end")
    return None


def line_region(line: Line, sender: str | None = None) -> str | None:
    """The country of the line: of its first E.164 number, else of `sender` (its texts' sender)."""
    for number in (*line.numbers, sender or ""):
        if number.startswith("+"):
            region = _region(number)
            if region is not None:
                return region
    return None


def parse_number(raw: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """`raw` as a valid phone number; national formats are read in `region`."""
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def screen_caller(raw: str, line: Line, text: FollowupText, config: Config) -> Textable | Refusal:
    """Whether `raw` (a caller ID as the call record has it) is a number a text can go to at all."""
    caller = raw.strip()
    if caller.lower() in ANONYMOUS_CALLERS:
        return Refusal("anonymous_caller")
    if caller.lower() in _internal_names(config):
        return Refusal("internal_extension")
    digits = caller.removeprefix("+")
    if not caller.startswith("+") and digits.isdigit() and len(digits) <= MAX_EXTENSION_DIGITS:
        return Refusal("internal_extension")
    if not any(character.isdigit() for character in caller):
        return Refusal("anonymous_caller")
    home = line_region(line, text.sender)
    parsed = parse_number(caller, home)
    if parsed is None:
        return Refusal("invalid_number")
    if phonenumbers.number_type(parsed) not in TEXTABLE_TYPES:
        return Refusal("not_mobile")
    return Textable(e164(parsed), phonenumbers.region_code_for_number(parsed) or "")


def outside_countries(caller: Textable, line: Line, text: FollowupText) -> Refusal | None:
    """Texts abroad only to the countries the line allows (by default its own): SMS pumping targets
    expensive foreign ranges."""
    home = line_region(line, text.sender)
    allowed = text.allowed_countries or frozenset({home} if home else ())
    return None if caller.region in allowed else Refusal("country_not_allowed", held=True)


def readings(raw: str, regions: frozenset[str]) -> frozenset[str]:
    """The E.164 numbers caller ID `raw` may be: itself if international, else read in each region."""
    caller = raw.strip()
    parsed = (parse_number(caller, region) for region in ((None,) if caller.startswith("+") else regions))
    return frozenset(e164(number) for number in parsed if number is not None)


def message_key(record: CallRecord, event: str) -> str:
    return "after_hours" if record.reason is Reason.AFTER_HOURS else event


def template_values(record: CallRecord, line: Line, number: str, now: datetime) -> dict[str, str]:
    ended = record.ended_at or now
    opening = next_open(line, now)
    dialed_line_number = record.dialed if record.dialed in line.numbers else None
    return {
        "caller": number,
        "line_name": line.name,
        "line_number": dialed_line_number or (line.numbers[0] if line.numbers else ""),
        "outcome": record.outcome.value if record.outcome else "",
        "reason": record.reason.value if record.reason else "",
        "wait_seconds": str(max(0, int((ended - record.started_at).total_seconds()))),
        "next_open": format_opening(line, opening) if opening is not None else "",
    }


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(text: FollowupText, key: str, values: Mapping[str, str]) -> str:
    """The message for `key` (an event or `after_hours`); the loader has checked the variables."""
    template = text.messages.get(key) or DEFAULT_FOLLOWUP_MESSAGES[key]
    return template.format_map(_Values(values))


def after_quiet_hours(moment: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """`moment` if texting is allowed then, else the end of the quiet hours it falls in (UTC)."""
    if quiet is None or quiet.start == quiet.end:
        return moment.astimezone(UTC)
    local = moment.astimezone(zone)
    wall = local.time()
    if quiet.start < quiet.end:
        inside, end_day = quiet.start <= wall < quiet.end, local.date()
    elif wall >= quiet.start:  # crossing midnight, evening part: quiet until tomorrow's end
        inside, end_day = True, local.date() + timedelta(days=1)
    else:
        inside, end_day = wall < quiet.end, local.date()
    if not inside:
        return moment.astimezone(UTC)
    return datetime.combine(end_day, quiet.end, zone).astimezone(UTC)


def first_attempt_at(planned: datetime, text: FollowupText, zone: ZoneInfo) -> datetime:
    """When a text planned at `planned` is first due: after the line's delay, outside quiet hours."""
    return after_quiet_hours(planned + timedelta(seconds=text.delay_seconds), text.quiet_hours, zone)


def _region(number: str) -> str | None:
    parsed = parse_number(number, None)
    return None if parsed is None else phonenumbers.region_code_for_number(parsed)


def _internal_names(config: Config) -> frozenset[str]:
    """User names and the resource of their endpoints (`PJSIP/alice` -> `alice`), lower case."""
    names: set[str] = set()
    for user in config.users.values():
        names.add(user.name.lower())
        names.add(user.endpoint.rpartition("/")[2].lower())
    return frozenset(names)
