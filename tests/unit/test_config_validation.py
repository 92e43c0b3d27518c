"""What the loader checks beyond the shape: references, numbers, hours, templates, addresses."""

from __future__ import annotations

from datetime import time

import pytest

from callkeeper.config.loader import ConfigProblem
from callkeeper.config.model import TimeRange
from tests.unit.test_config_loader import (
    API_TOKEN,
    ASTERISK,
    ISSUE_CONFIG,
    MINIMAL,
    ONE_LINE,
    TWILIO,
    line_with,
    load,
    problem_at,
    problems,
)

PEOPLE = """\
users:
  alice: {endpoint: PJSIP/alice}
  bob: {endpoint: PJSIP/bob}
"""


def test_unknown_destination_targets_are_named_with_path_and_line() -> None:
    text = (
        ASTERISK
        + PEOPLE
        + """\
ring_groups:
  sales: {members: [alice]}
ivrs:
  main-menu:
    prompt: sound:menu
    options:
      "1": ring_group:sale
      "7": ivr:nowhere
      "8": user:zed
    no_input: line:gone
lines:
  main: {numbers: ["100"], route: ivr:main-menu, after_hours: user:bobby}
"""
    )
    found = {(p.path, p.line): p.message for p in problems(text)}
    sale = "no ring_group named 'sale' (did you mean 'sales'?); ring_groups known: sales"
    bobby = "no user named 'bobby' (did you mean 'bob'?); users known: alice, bob"
    assert found == {
        ("ivrs.main-menu.options.1", 13): sale,
        ("ivrs.main-menu.options.7", 14): "no ivr named 'nowhere'; ivrs known: main-menu",
        ("ivrs.main-menu.options.8", 15): "no user named 'zed'; users known: alice, bob",
        ("ivrs.main-menu.no_input", 16): "no line named 'gone'; lines known: main",
        ("lines.main.after_hours", 18): bobby,
    }


def test_ring_group_members_must_be_users_once() -> None:
    text = (
        ASTERISK
        + PEOPLE
        + """\
ring_groups:
  sales:
    layers: [[alice, bob], [carol, alice]]
  support:
    members: [bob, bob]
lines:
  main: {numbers: ["100"], route: ring_group:sales}
"""
    )
    found = {p.path: p.message for p in problems(text)}
    assert found == {
        "ring_groups.sales.layers.1.0": "'carol' is not a user; users known: alice, bob",
        "ring_groups.sales.layers.1.1": "'alice' is already in this group at ring_groups.sales.layers.0.0",
        "ring_groups.support.members.1": "'bob' is already in this group at ring_groups.support.members.0",
    }


@pytest.mark.parametrize("members", ["members: [alice], layers: [[bob]]", "strategy: random"])
def test_members_and_layers_are_exclusive_and_one_is_required(members: str) -> None:
    text = (
        ASTERISK
        + PEOPLE
        + f"ring_groups:\n  sales: {{{members}}}\nlines: {{main: {{numbers: ['1'], route: voicemail}}}}\n"
    )
    assert problem_at(text, "ring_groups.sales").message == "give exactly one of members or layers"


def test_empty_layer() -> None:
    text = ASTERISK + PEOPLE + "ring_groups:\n  sales: {layers: [[alice], []]}\n" + ONE_LINE
    assert problem_at(text, "ring_groups.sales.layers.1").message == "must not be empty"


# -- business hours ------------------------------------------------------------------------------


def hours_problems(business_hours: str) -> list[ConfigProblem]:
    return problems(line_with(f'numbers: ["100"]\nroute: voicemail\nbusiness_hours: {business_hours}\n'))


def test_range_crossing_midnight_suggests_two_ranges() -> None:
    [problem] = hours_problems('{fri: ["22:00-02:00"]}')
    assert problem.path == "lines.main.business_hours.fri.0"
    assert problem.line == 8
    assert "crosses midnight" in problem.message
    assert "22:00-24:00" in problem.message and "00:00-02:00 on the next" in problem.message


def test_empty_range() -> None:
    [problem] = hours_problems('{mon: ["09:00-09:00"]}')
    assert problem.message == "'09:00-09:00' is empty: a range must end after it starts"


@pytest.mark.parametrize(
    "text", ["9:00-17:00", "09:00-17", "24:00-24:00", "09:60-10:00", "09:00-24:01", "nine-five"]
)
def test_malformed_ranges(text: str) -> None:
    [problem] = hours_problems(f'{{mon: ["{text}"]}}')
    assert problem.path == "lines.main.business_hours.mon.0"
    assert problem.message == f"expected a range HH:MM-HH:MM, got {text!r}"


def test_overlapping_ranges_across_day_keys() -> None:
    found = hours_problems('{mon-fri: ["09:00-17:00"], wed: ["08:00-10:00", "17:00-18:00"]}')
    assert [(p.path, p.message) for p in found] == [
        ("lines.main.business_hours.mon-fri.0", "overlaps lines.main.business_hours.wed.0 on wed")
    ]


def test_an_overlap_is_reported_once_with_its_days() -> None:
    [problem] = hours_problems('{mon-fri: ["09:00-17:00"], daily: ["12:00-13:00"]}')
    assert problem.path == "lines.main.business_hours.daily.0"
    assert problem.message == "overlaps lines.main.business_hours.mon-fri.0 on mon, tue, wed, thu, fri"


def test_overlap_with_an_earlier_longer_range() -> None:
    found = hours_problems('{mon: ["08:00-18:00", "09:00-10:00", "12:00-13:00"]}')
    assert [p.path for p in found] == ["lines.main.business_hours.mon.1", "lines.main.business_hours.mon.2"]


def test_day_keys() -> None:
    config = load(
        line_with(
            'numbers: ["100"]\nroute: voicemail\n'
            'business_hours: {sat-sun: ["10:00-24:00"], tue: ["00:00-01:00"]}\n'
        )
    )
    hours = config.lines["main"].business_hours
    assert hours is not None
    assert dict(hours.weekly) == {
        1: (TimeRange(time(0), time(1)),),
        5: (TimeRange(time(10), time.max),),
        6: (TimeRange(time(10), time.max),),
    }
    [backwards] = hours_problems('{sun-mon: ["09:00-10:00"]}')
    assert backwards.path == "lines.main.business_hours.sun-mon"
    assert "runs backwards" in backwards.message
    [unknown] = hours_problems('{monday: ["09:00-10:00"]}')
    assert (
        unknown.message
        == "expected a day (mon..sun), a range like mon-fri, or daily as the key, got 'monday'"
    )


def test_holidays_alone_close_an_otherwise_open_line() -> None:
    config = load(line_with('numbers: ["100"]\nroute: voicemail\nholidays: ["2026-01-01"]\n'))
    hours = config.lines["main"].business_hours
    assert hours is not None
    assert all(hours.weekly[day] == (TimeRange(time(0), time.max),) for day in range(7))
    [bad] = problems(line_with('numbers: ["100"]\nroute: voicemail\nholidays: ["2026-02-30"]\n'))
    assert (bad.path, bad.message) == ("lines.main.holidays.0", "'2026-02-30' is not a date")


def test_time_zone_must_exist() -> None:
    [problem] = problems(line_with('numbers: ["100"]\nroute: voicemail\ntimezone: America/Gotham\n'))
    assert (problem.path, problem.line) == ("lines.main.timezone", 8)
    assert problem.message == "unknown time zone 'America/Gotham'; use a name like America/New_York"


# -- numbers -------------------------------------------------------------------------------------


def test_a_number_belongs_to_one_line() -> None:
    text = (
        ASTERISK
        + 'lines:\n  a: {numbers: ["+12125550100", "100"]}\n  b: {numbers: ["100", "+12125550100"]}\n'
    )
    text = text.replace("]}", "], route: voicemail}")
    found = [(p.path, p.line, p.message) for p in problems(text)]
    assert found == [
        ("lines.b.numbers.0", 6, "100 is already used by lines.a.numbers.1"),
        ("lines.b.numbers.1", 6, "+12125550100 is already used by lines.a.numbers.0"),
    ]


@pytest.mark.parametrize(
    "number", ["12125550100x", "+0123", "2125550100 ", "+1 212 555 0100", "+1234567890123456"]
)
def test_line_numbers_are_e164_or_extensions(number: str) -> None:
    [problem] = problems(line_with(f'numbers: ["{number}"]\nroute: voicemail\n'))
    assert problem.path == "lines.main.numbers.0"
    assert problem.message.startswith("expected an E.164 number like +12125550100 or an extension")


def test_external_numbers_must_be_valid() -> None:
    [problem] = problems(line_with('numbers: ["100"]\nroute: "external:+1555"\n'))
    assert (problem.path, problem.message) == ("lines.main.route", "+1555 is not a valid E.164 number")
    [backup] = problems(
        ASTERISK + 'users: {a: {endpoint: PJSIP/a, backup_number: "+19995550100"}}\n' + ONE_LINE
    )
    assert (backup.path, backup.message) == (
        "users.a.backup_number",
        "+19995550100 is not a valid E.164 number",
    )


def test_outbound_dial_is_required_to_dial_out() -> None:
    text = 'asterisk: {password: pw}\nusers: {a: {endpoint: PJSIP/a, backup_number: "+16465550111"}}\n'
    text += 'lines:\n  main: {numbers: ["1"], route: voicemail,'
    text += ' missed_calls: {action: "external:+14155550123"}}\n'
    [problem] = problems(text)
    assert (problem.path, problem.line) == ("asterisk.outbound_dial", 1)
    assert problem.message == (
        "required to dial out to users.a.backup_number (+16465550111), "
        "lines.main.missed_calls.action (+14155550123)"
    )


def test_outbound_dial_needs_the_number_placeholder() -> None:
    text = ISSUE_CONFIG.replace("PJSIP/{number}@trunk", "PJSIP/{num}@trunk")
    found = [(p.path, p.line, p.message) for p in problems(text)]
    assert found == [
        ("asterisk.outbound_dial", 6, "unknown variable {num}; use {number}"),
        ("asterisk.outbound_dial", 6, "must contain {number}"),
    ]


# -- routing -------------------------------------------------------------------------------------


def test_a_line_routing_to_itself() -> None:
    [problem] = problems(line_with('numbers: ["100"]\nroute: line:main\n'))
    assert problem.path == "lines.main.route"
    assert problem.message == "lines send calls around in a loop: lines.main.route -> line:main"


def test_lines_passing_calls_around_in_a_loop() -> None:
    text = ASTERISK + (
        "lines:\n"
        '  a: {numbers: ["1"], route: line:b}\n'
        '  b: {numbers: ["2"], route: voicemail, after_hours: line:c}\n'
        '  c: {numbers: ["3"], route: voicemail, missed_calls: {action: "line:a"}}\n'
        '  d: {numbers: ["4"], route: line:a}\n'
    )
    [problem] = problems(text)
    assert (problem.path, problem.line) == ("lines.a.route", 5)
    assert problem.message == (
        "lines send calls around in a loop: lines.a.route -> line:b, lines.b.after_hours -> line:c, "
        "lines.c.missed_calls.action -> line:a"
    )


def test_an_ivr_choice_back_to_the_line_is_no_loop() -> None:
    load(
        ASTERISK
        + "ivrs: {menu: {prompt: 'sound:menu', options: {'0': line:main}, no_input: line:main}}\n"
        + 'lines: {main: {numbers: ["1"], route: ivr:menu}}\n'
    )


@pytest.mark.parametrize("key", ["10", "a", "A", "**", "+"])
def test_ivr_keys_are_single_dtmf_digits(key: str) -> None:
    text = ASTERISK + f"ivrs: {{menu: {{prompt: 'sound:menu', options: {{'{key}': dead_end}}}}}}\n"
    text += 'lines: {main: {numbers: ["1"], route: ivr:menu}}\n'
    problem = problem_at(text, f"ivrs.menu.options.{key}")
    assert problem.message == f"expected a single DTMF key 0-9, * or # as the key, got {key!r}"


def test_missed_calls_go_to_voicemail_a_line_or_outside() -> None:
    [problem] = problems(line_with('numbers: ["1"]\nroute: voicemail\nmissed_calls: {action: dead_end}\n'))
    assert (problem.path, problem.message) == (
        "lines.main.missed_calls.action",
        "must be voicemail, line:NAME or external:+E164, not dead_end",
    )


@pytest.mark.parametrize("text", ["ivr", "ivr:", "voicemail:100", "external:12125550100", "ring-group:sales"])
def test_malformed_destinations(text: str) -> None:
    [problem] = problems(line_with(f'numbers: ["1"]\nroute: "{text}"\n'))
    assert problem.message.startswith("expected a destination: ivr:NAME, ")


# -- follow-up texts -----------------------------------------------------------------------------


def followup_problems(
    followup: str, numbers: str = '["+12125550100"]', providers: str = TWILIO
) -> dict[str, str]:
    found = problems(
        line_with(f"numbers: {numbers}\nroute: voicemail\nfollowup_text: {followup}\n", providers)
    )
    return {p.path: p.message for p in found}


def test_template_variables_are_checked_with_path_and_line() -> None:
    text = line_with(
        'numbers: ["+12125550100"]\nroute: voicemail\nfollowup_text:\n  messages:\n'
        '    missed: "Hi {name}, {caller} called {line_name}"\n    abandoned: "{0} {line_number}"\n'
        '    after_hours: "open {next_open"\n',
        TWILIO,
    )
    found = [(p.path, p.line, p.message) for p in problems(text)]
    variables = "{caller}, {line_name}, {line_number}, {next_open}, {outcome}, {reason}, {wait_seconds}"
    assert found == [
        ("lines.main.followup_text.messages.missed", 12, f"unknown variable {{name}}; use {variables}"),
        ("lines.main.followup_text.messages.abandoned", 13, f"unknown variable {{0}}; use {variables}"),
        (
            "lines.main.followup_text.messages.after_hours",
            14,
            "bad template: expected '}' before end of string (write a literal brace as {{ or }})",
        ),
    ]


def test_followup_provider_must_exist() -> None:
    assert followup_problems("{provider: twillio}") == {
        "lines.main.followup_text.provider": (
            "no sms provider 'twillio' (did you mean 'twilio'?); known: twilio"
        )
    }
    assert followup_problems("{}", providers="") == {
        "lines.main.followup_text.provider": "name the sms provider to send with: add one under sms_providers"
    }
    two = TWILIO + "  relay: {type: webhook, url: 'https://relay.example/'}\n"
    assert followup_problems("{}", providers=two) == {
        "lines.main.followup_text.provider": (
            "name the sms provider to send with: there are several sms_providers"
        )
    }


def test_followup_sender_and_countries() -> None:
    assert followup_problems('{from: "+1555"}') == {
        "lines.main.followup_text.from": "+1555 is not a valid E.164 number"
    }
    assert followup_problems('{from: "12125550100"}') == {
        "lines.main.followup_text.from": "expected an E.164 number like +12125550100, got '12125550100'"
    }
    assert followup_problems("{}", numbers='["100"]') == {
        "lines.main.followup_text.from": "required: the line has no E.164 number to send from",
        "lines.main.followup_text.allowed_countries": "required: no country follows from the line's numbers",
    }
    assert followup_problems("{allowed_countries: [US, XX]}") == {
        "lines.main.followup_text.allowed_countries.1": "'XX' is not a known region code"
    }


def test_followup_events_and_quiet_hours() -> None:
    found = followup_problems('{on: [missed, voicemail], quiet_hours: {start: "22:00", end: "22:00"}}')
    assert found == {
        "lines.main.followup_text.on.1": (
            "must be one of abandoned, missed, outbound_abandoned, not 'voicemail'"
        ),
        "lines.main.followup_text.quiet_hours": "start and end are the same time",
    }
    assert followup_problems('{quiet_hours: {start: "21:00"}}') == {
        "lines.main.followup_text.quiet_hours.end": "missing required key 'end'"
    }


def test_sms_provider_templates_and_urls() -> None:
    found = problems(
        MINIMAL
        + """\
sms_providers:
  trunk: {type: asterisk, endpoint: "pjsip:trunk/{number}"}
  relay: {type: webhook, url: "https://user:pw@relay.example/"}
  twilio: {type: twilio, account_sid: AC1, auth_token: t, base_url: "ftp://api.twilio.com"}
"""
    )
    assert {(p.path, p.message) for p in found} == {
        ("sms_providers.trunk.endpoint", "unknown variable {number}; use {from}, {to}"),
        ("sms_providers.trunk.endpoint", "must contain {to}"),
        ("sms_providers.relay.url", "credentials do not belong in a URL; give them as their own keys"),
        ("sms_providers.twilio.base_url", "expected an http:// or https:// URL, got 'ftp://api.twilio.com'"),
    }


# -- addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:8090", "127.0.0.53:80", "[::1]:8090", "localhost:8090", "0.0.0.0:8090", "[::]:8090"]
)
def test_the_api_always_needs_a_token(listen: str) -> None:
    [problem] = problems(MINIMAL + f'http: {{listen: "{listen}"}}\n')
    assert (problem.path, problem.line) == ("http.token", 4)
    assert problem.message.startswith(
        "required: the API always needs a bearer token of at least 32 characters"
    )
    assert "`callkeeper new-token` or `openssl rand -hex 32`" in problem.message
    config = load(MINIMAL + f'http: {{listen: "{listen}", token: {API_TOKEN}}}\n')
    assert f"{config.http.host}:{config.http.port}".endswith(listen.replace("[", "").replace("]", ""))


def test_a_token_shorter_than_32_characters_is_refused() -> None:
    [problem] = problems(MINIMAL + f"http:\n  listen: 127.0.0.1:8090\n  token: {API_TOKEN[:31]}\n")
    assert (problem.path, problem.line) == ("http.token", 6)
    assert problem.message.startswith("too short: at least 32 characters")
    assert API_TOKEN[:31] not in problem.message


def test_host_names_and_public_url() -> None:
    config = load(
        MINIMAL
        + f"http: {{token: {API_TOKEN}, names: [pbx.example.com], public_url: 'https://pbx.example.com/ck/'}}\n"
    )
    assert (config.http.names, config.http.public_url) == (("pbx.example.com",), "https://pbx.example.com/ck")
    found = problems(
        MINIMAL + f"http: {{token: {API_TOKEN}, names: ['a b'], public_url: 'https://x/?a=1'}}\n"
    )
    assert [(p.path, p.message) for p in found] == [
        ("http.names.0", "expected a host name like pbx.example.com, got 'a b'"),
        ("http.public_url", "a base URL has no query or fragment"),
    ]


def test_ipv6_listen_address() -> None:
    config = load(MINIMAL + f'http: {{listen: "[2001:db8::1]:9000", token: {API_TOKEN}}}\n')
    assert (config.http.host, config.http.port) == ("2001:db8::1", 9000)


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("127.0.0.1:70000", "port 70000 is not between 1 and 65535"),
        ("127.0.0.1:0", "port 0 is not between 1 and 65535"),
        ("[1:2:3:4:5:6:7:8:9]:8090", "'1:2:3:4:5:6:7:8:9' is not an IPv6 address"),
        ("127.0.0.1", "expected HOST:PORT or [IPv6]:PORT, got '127.0.0.1'"),
        ("::1:8090", "expected HOST:PORT or [IPv6]:PORT, got '::1:8090'"),
    ],
)
def test_bad_listen_addresses(listen: str, message: str) -> None:
    problem = problem_at(MINIMAL + f'http: {{listen: "{listen}", token: {API_TOKEN}}}\n', "http.listen")
    assert problem.message == message


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            "mysql://db/callkeeper",
            "expected a sqlite:///PATH or postgresql:// URL, got 'mysql://db/callkeeper'",
        ),
        ("sqlite:///", "sqlite:/// needs a database file path"),
        ("postgresql:///callkeeper", "postgresql:// needs a host"),
    ],
)
def test_storage_url(storage: str, message: str) -> None:
    assert problem_at(MINIMAL + f'storage: "{storage}"\n', "storage").message == message


@pytest.mark.parametrize(
    "storage",
    [
        "sqlite:///tmp/ck.db",
        "postgresql://ck@db.internal:5432/callkeeper",
        "postgresql:///ck?host=/run/postgresql",
    ],
)
def test_good_storage_urls(storage: str) -> None:
    assert load(MINIMAL + f'storage: "{storage}"\n').storage == storage


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://ari:secret@127.0.0.1:8088",
            "credentials do not belong in a URL; give them as their own keys",
        ),
        ("http://127.0.0.1:99999", "the URL has a bad port"),
        ("ws://127.0.0.1:8088", "expected an http:// or https:// URL, got 'ws://127.0.0.1:8088'"),
        ("http:///ari", "the URL has no host"),
    ],
)
def test_asterisk_url(url: str, message: str) -> None:
    text = (
        f'asterisk: {{password: pw, url: "{url}"}}\nlines: {{main: {{numbers: ["1"], route: voicemail}}}}\n'
    )
    assert problem_at(text, "asterisk.url").message == message


def test_values_from_the_environment_are_not_repeated_in_problems() -> None:
    text = 'asterisk: {password: pw}\nlines: {main: {numbers: ["1"], route: voicemail}}\nstorage: "${DB}"\n'
    [problem] = problems(text, {"DB": "mysql://root:hunter2@db/ck"})
    assert problem.message == "expected a sqlite:///PATH or postgresql:// URL, got '${DB}' (substituted)"


def test_names_are_plain() -> None:
    problem = problem_at(ASTERISK + 'users: {"al ice": {endpoint: PJSIP/a}}\n' + ONE_LINE, "users.al ice")
    assert problem.message == "expected a name of letters, digits, '-' and '_' as the key, got 'al ice'"


def test_inbox_lines_name_lines_and_the_inbox_keys_load() -> None:
    text = (
        ASTERISK
        + """\
users:
  alice: {endpoint: PJSIP/alice, inbox_lines: [mian, main], web_password_hash: "$scrypt$n=16384$abc"}
  bob: {endpoint: PJSIP/bob, inbox_lines: []}
lines:
  main: {numbers: ["100"], route: user:alice}
"""
    )
    found = {(p.path, p.line): p.message for p in problems(text)}
    assert (
        found[("users.alice.inbox_lines.0", 5)]
        == "'mian' is not a line (did you mean 'main'?); lines known: main"
    )
    assert ("users.bob.inbox_lines", 6) in found  # an empty list would show nothing: say so instead

    config = load(ASTERISK + "users:\n  alice: {endpoint: PJSIP/alice, inbox_lines: [main]}\n" + ONE_LINE)
    assert config.users["alice"].inbox_lines == ("main",)
    assert config.users["alice"].web_password_hash is None
    assert config.asterisk.voicemail_spool == "/var/spool/asterisk/voicemail"
