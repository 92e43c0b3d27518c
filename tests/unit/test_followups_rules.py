"""Who gets a follow-up text, when, and its words: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callkeeper.config.model import DEFAULT_FOLLOWUP_MESSAGES, QuietHours
from callkeeper.followups import rules
from callkeeper.records import Direction, Outcome, Reason
from tests.followups.builders import (
    FRENCH_MOBILE,
    GB_LANDLINE,
    LINE_NUMBER,
    LONDON,
    MOBILE,
    T0,
    call,
    config,
    followup_text,
    line,
)

SALES = line()
CONFIG = config(SALES)


def screen(raw: str, **text_changes: object) -> rules.Textable | rules.Refusal:
    text = followup_text(**text_changes)
    return rules.screen_caller(raw, line(text=text), text, CONFIG)


@pytest.mark.parametrize(
    ("direction", "outcome", "event"),
    [
        (Direction.INBOUND, Outcome.MISSED, "missed"),
        (Direction.INBOUND, Outcome.ABANDONED, "abandoned"),
        (Direction.OUTBOUND, Outcome.MISSED, "outbound_abandoned"),
        (Direction.OUTBOUND, Outcome.ABANDONED, "outbound_abandoned"),
        (Direction.INBOUND, Outcome.ANSWERED, None),
        (Direction.INBOUND, Outcome.IGNORED, None),
    ],
)
def test_text_event(direction: Direction, outcome: Outcome, event: str | None) -> None:
    assert rules.text_event(call(direction=direction, outcome=outcome)) == event


def test_outbound_calls_text_the_dialed_party() -> None:
    outbound = call(direction=Direction.OUTBOUND, caller=LINE_NUMBER)
    assert outbound.customer == outbound.dialed
    assert call(caller=MOBILE).customer == MOBILE


def test_an_outbound_call_answered_by_the_user_alone_did_not_reach_the_customer() -> None:
    user_only = call(direction=Direction.OUTBOUND, outcome=Outcome.ABANDONED, answered_by="alice")
    assert not user_only.customer_answered
    assert call(direction=Direction.OUTBOUND, outcome=Outcome.ANSWERED, answered_by="alice").customer_answered
    assert call(outcome=Outcome.ANSWERED, answered_by="alice").customer_answered
    assert not call(outcome=Outcome.MISSED).customer_answered


def test_ignored_and_dead_end_calls_are_never_followed_up() -> None:
    assert rules.not_followed_up(
        call(outcome=Outcome.IGNORED, reason=Reason.UNKNOWN_NUMBER)
    ) == rules.Refusal("ignored")
    assert rules.not_followed_up(call(reason=Reason.DEAD_END)) == rules.Refusal("dead_end")
    assert rules.not_followed_up(call()) is None


@pytest.mark.parametrize(
    "raw", ["", "  ", "anonymous", "Anonymous", "Withheld", "PRIVATE", "unknown", "sip:x"]
)
def test_anonymous_callers(raw: str) -> None:
    assert screen(raw) == rules.Refusal("anonymous_caller")


@pytest.mark.parametrize("raw", ["100", "2001", "999999", "alice", "ALICE"])
def test_internal_extensions(raw: str) -> None:
    assert screen(raw) == rules.Refusal("internal_extension")


@pytest.mark.parametrize("raw", ["+4412", "+999123456789", "+447700900123", "12345678901234567"])
def test_invalid_numbers(raw: str) -> None:
    assert screen(raw) == rules.Refusal("invalid_number")


@pytest.mark.parametrize("raw", [GB_LANDLINE, "+18005550199", "020 7946 0123"])
def test_numbers_that_cannot_take_a_text(raw: str) -> None:
    assert screen(raw, allowed_countries=frozenset({"GB", "US"})) == rules.Refusal("not_mobile")


def test_mobiles_pass_in_e164_and_national_format() -> None:
    assert screen(MOBILE) == rules.Textable(MOBILE, "GB")
    assert screen("07400 123456") == rules.Textable(MOBILE, "GB")
    assert screen("00447400123456") == rules.Textable(MOBILE, "GB")


def test_nanp_fixed_line_or_mobile_numbers_pass() -> None:
    assert screen("+12125550123") == rules.Textable("+12125550123", "US")


def test_countries_default_to_the_lines_own() -> None:
    text = followup_text()
    french = rules.screen_caller(FRENCH_MOBILE, SALES, text, CONFIG)
    assert french == rules.Textable(FRENCH_MOBILE, "FR")
    assert rules.outside_countries(french, SALES, text) == rules.Refusal("country_not_allowed", held=True)
    assert rules.outside_countries(rules.Textable(MOBILE, "GB"), SALES, text) is None
    allowed = followup_text(allowed_countries=frozenset({"FR"}))
    assert rules.outside_countries(french, SALES, allowed) is None
    assert rules.outside_countries(rules.Textable(MOBILE, "GB"), SALES, allowed) is not None


def test_readings_of_a_caller_id() -> None:
    assert rules.readings(MOBILE, frozenset()) == {MOBILE}
    assert rules.readings("07400 123456", frozenset({"GB", "FR"})) == {MOBILE}
    assert rules.readings("0612345678", frozenset({"GB", "FR"})) == {FRENCH_MOBILE}
    assert rules.readings("anonymous", frozenset({"GB"})) == frozenset()


def test_templates_get_every_variable() -> None:
    text = followup_text(
        messages={
            "missed": "{caller}|{line_name}|{line_number}|{outcome}|{reason}|{wait_seconds}|{next_open}",
        }
    )
    record = call(started_at=T0 - timedelta(seconds=42), ended_at=T0)
    values = rules.template_values(record, SALES, MOBILE, T0)
    assert rules.render(text, rules.message_key(record, "missed"), values) == (
        f"{MOBILE}|sales|{LINE_NUMBER}|missed|ring_group_no_answer|42|Monday 10:00"
    )


def test_after_hours_calls_get_the_after_hours_message_with_the_next_opening() -> None:
    friday_evening = datetime(2026, 3, 6, 19, 30, tzinfo=UTC)
    record = call(reason=Reason.AFTER_HOURS, ended_at=friday_evening, started_at=friday_evening)
    key = rules.message_key(record, "missed")
    assert key == "after_hours"
    values = rules.template_values(record, SALES, MOBILE, friday_evening)
    assert rules.render(followup_text(), key, values) == DEFAULT_FOLLOWUP_MESSAGES["after_hours"].replace(
        "{next_open}", "Monday 09:00"
    )


def test_missing_messages_fall_back_to_the_defaults() -> None:
    values = rules.template_values(call(outcome=Outcome.ABANDONED), SALES, MOBILE, T0)
    assert rules.render(followup_text(messages={}), "abandoned", values) == (
        f"We saw you called sales. Call us back at {LINE_NUMBER} or reply here."
    )


def test_an_always_open_line_opens_now() -> None:
    values = rules.template_values(call(), line(business_hours=None), MOBILE, T0)
    assert values["next_open"] == "Monday 10:00"


NIGHT = QuietHours(time(21), time(8))
LUNCH = QuietHours(time(12), time(14))


def london(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("quiet", "moment", "expected"),
    [
        (NIGHT, london(2, 20, 59), london(2, 20, 59)),
        (NIGHT, london(2, 21), london(3, 8)),
        (NIGHT, london(2, 23, 30), london(3, 8)),
        (NIGHT, london(3, 0, 10), london(3, 8)),
        (NIGHT, london(3, 7, 59), london(3, 8)),
        (NIGHT, london(3, 8), london(3, 8)),
        (LUNCH, london(2, 12, 30), london(2, 14)),
        (LUNCH, london(2, 14), london(2, 14)),
        (LUNCH, london(2, 11), london(2, 11)),
        (None, london(2, 23), london(2, 23)),
    ],
)
def test_quiet_hours_in_the_lines_zone(
    quiet: QuietHours | None, moment: datetime, expected: datetime
) -> None:
    moved = rules.after_quiet_hours(moment, quiet, LONDON)
    assert moved == expected
    assert moved.tzinfo is UTC


def test_quiet_hours_follow_daylight_saving_time() -> None:
    # London moves to BST on 2026-03-29: 08:00 local is 08:00 UTC before, 07:00 UTC after.
    assert rules.after_quiet_hours(london(28, 22), NIGHT, LONDON) == datetime(2026, 3, 29, 7, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")
    late = datetime(2026, 3, 2, 22, tzinfo=new_york)
    assert rules.after_quiet_hours(late, NIGHT, new_york) == datetime(2026, 3, 3, 13, tzinfo=UTC)


def test_first_attempt_waits_the_delay_then_the_quiet_hours() -> None:
    text = followup_text(delay_seconds=120, quiet_hours=NIGHT)
    assert rules.first_attempt_at(london(2, 10), text, LONDON) == london(2, 10, 2)
    assert rules.first_attempt_at(london(2, 20, 59), text, LONDON) == london(3, 8)
