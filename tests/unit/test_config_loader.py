"""Loading callkeeper.yaml: the issue's config, defaults, secrets, and how problems are reported."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from callkeeper.config.loader import ConfigError, ConfigProblem, check_config, load_config, load_config_text
from callkeeper.config.model import (
    DEFAULT_FOLLOWUP_MESSAGES,
    AsteriskConfig,
    Config,
    Destination,
    DestinationKind,
    FollowupText,
    HttpConfig,
    Ivr,
    MissedCalls,
    QueueConfig,
    QuietHours,
    RingGroup,
    Secret,
    SmsProviderType,
    Strategy,
    TextLimits,
    TimeRange,
    UnknownNumber,
    UnknownNumberAction,
    User,
    Webhook,
)

API_TOKEN = "api-secret-0123456789abcdef0123456789"
ENV = {"CALLKEEPER_ARI_PASSWORD": "ari-secret", "CALLKEEPER_API_TOKEN": API_TOKEN}
# Appended to a config without an `http:` section: the API always needs a token. At the end, so the
# lines of everything before stay as written.
HTTP_TOKEN = f"http: {{token: {API_TOKEN}}}\n"

# The configuration from the issue, exactly as written there.
ISSUE_CONFIG = """\
asterisk:
  url: http://127.0.0.1:8088
  username: callkeeper
  password: ${CALLKEEPER_ARI_PASSWORD}
  app: callkeeper
  outbound_dial: PJSIP/{number}@trunk
storage: sqlite:///var/lib/callkeeper/callkeeper.db
http:
  listen: 127.0.0.1:8090
  token: ${CALLKEEPER_API_TOKEN}
users:
  alice: {endpoint: PJSIP/alice, backup_number: "+16465550111"}
  bob: {endpoint: PJSIP/bob}
  carol: {endpoint: PJSIP/carol}
ring_groups:
  sales:
    strategy: ring_all
    ring_seconds: 20
    layers: [[alice, bob], [carol]]
    fishing_mode: false
    queue: {max_wait_seconds: 300, music_class: default, announce_position_seconds: 60}
  support:
    strategy: sequential
    ring_seconds: 15
    members: [bob, carol]
ivrs:
  main-menu:
    prompt: sound:demo-instruct
    timeout_seconds: 5
    attempts: 3
    options: {"1": ring_group:sales, "2": ring_group:support, "3": user:alice, "9": voicemail}
    no_input: ring_group:sales
lines:
  main:
    numbers: ["+12125550100", "1000"]
    timezone: America/New_York
    business_hours: {mon-fri: ["09:00-12:00", "13:00-17:00"], sat: ["10:00-14:00"]}
    holidays: ["2026-12-25"]
    after_hours: voicemail
    welcome: sound:hello
    route: ivr:main-menu
    short_abandon_seconds: 5
    missed_calls: {action: voicemail, mailbox: "1000@default"}
  support:
    numbers: ["+12125550199"]
    route: ring_group:support
    missed_calls: {action: "external:+14155550123"}
"""

# Asterisk settings for configs that dial out; three lines long.
ASTERISK = """\
asterisk:
  password: pw
  outbound_dial: PJSIP/{number}@trunk
"""

ONE_LINE = """\
lines:
  main: {numbers: ["100"], route: voicemail}
"""

MINIMAL = "asterisk: {password: pw}\n" + ONE_LINE

FOLLOWUP = """\
    followup_text:
      on: [missed, abandoned]          # allowed: missed, abandoned, outbound_abandoned
      from: "+12125550100"
      provider: twilio                  # a name from sms_providers
      delay_seconds: 60
      once_per_caller_hours: 24
      quiet_hours: {start: "21:00", end: "08:00"}
      allowed_countries: [US, CA]      # default: the country of the line's first E.164 number
      messages:
        missed: "Sorry we missed your call to {line_name}. We'll call you back soon. Reply STOP to opt out."
        abandoned: "We saw you called {line_name}. Call us back at {line_number} or reply here."
        after_hours: "We're closed now; we open at {next_open}. We'll call you back."
"""

TWILIO = """\
sms_providers:
  twilio: {type: twilio, account_sid: AC123, auth_token: tw-secret}
"""


def load(text: str, env: Mapping[str, str] = ENV, base_dir: Path | None = None) -> Config:
    text = textwrap.dedent(text)
    if "lines:" in text and not re.search(r"^http:", text, re.MULTILINE):
        text += HTTP_TOKEN
    return load_config_text(text, "test.yaml", env, base_dir=base_dir)


def problems(text: str, env: Mapping[str, str] = ENV, base_dir: Path | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as raised:
        load(text, env, base_dir)
    return raised.value.problems


def problem_at(text: str, path: str) -> ConfigProblem:
    """The one problem reported at `path` (others may be reported too)."""
    found = [problem for problem in problems(text) if problem.path == path]
    assert len(found) == 1, (path, problems(text))
    return found[0]


def line_with(body: str, extra: str = "") -> str:
    """A config whose only line `main` has `body` (YAML lines indented by four)."""
    return ASTERISK + extra + "lines:\n  main:\n" + textwrap.indent(textwrap.dedent(body), "    ")


# -- the issue's config --------------------------------------------------------------------------


def test_issue_config_is_accepted_as_written() -> None:
    config = load(ISSUE_CONFIG)

    assert config.asterisk == AsteriskConfig(
        url="http://127.0.0.1:8088",
        username="callkeeper",
        password=Secret("ari-secret"),
        app="callkeeper",
        outbound_dial="PJSIP/{number}@trunk",
    )
    assert config.storage == "sqlite:///var/lib/callkeeper/callkeeper.db"
    assert config.http == HttpConfig(host="127.0.0.1", port=8090, token=Secret(API_TOKEN))
    assert config.users["alice"] == User("alice", "PJSIP/alice", "+16465550111")
    assert config.users["bob"] == User("bob", "PJSIP/bob")
    assert config.ring_groups["sales"] == RingGroup(
        name="sales",
        layers=(("alice", "bob"), ("carol",)),
        strategy=Strategy.RING_ALL,
        ring_seconds=20,
        fishing_mode=False,
        queue=QueueConfig(max_wait_seconds=300, music_class="default", announce_position_seconds=60),
    )
    assert config.ring_groups["support"] == RingGroup(
        name="support", layers=(("bob", "carol"),), strategy=Strategy.SEQUENTIAL, ring_seconds=15
    )
    assert config.ivrs["main-menu"] == Ivr(
        name="main-menu",
        prompt="sound:demo-instruct",
        options={
            "1": Destination(DestinationKind.RING_GROUP, "sales"),
            "2": Destination(DestinationKind.RING_GROUP, "support"),
            "3": Destination(DestinationKind.USER, "alice"),
            "9": Destination(DestinationKind.VOICEMAIL),
        },
        timeout_seconds=5,
        attempts=3,
        no_input=Destination(DestinationKind.RING_GROUP, "sales"),
    )

    main = config.lines["main"]
    assert main.numbers == ("+12125550100", "1000")
    assert main.timezone == ZoneInfo("America/New_York")
    assert main.route == Destination(DestinationKind.IVR, "main-menu")
    assert main.after_hours == Destination(DestinationKind.VOICEMAIL)
    assert main.welcome == "sound:hello"
    assert main.short_abandon_seconds == 5
    assert main.missed_calls == MissedCalls(
        action=Destination(DestinationKind.VOICEMAIL), mailbox="1000@default"
    )
    assert main.mailbox == "1000@default"
    assert main.business_hours is not None
    assert main.business_hours.holidays == frozenset({date(2026, 12, 25)})
    office = (TimeRange(time(9), time(12)), TimeRange(time(13), time(17)))
    assert dict(main.business_hours.weekly) == {
        **dict.fromkeys(range(5), office),
        5: (TimeRange(time(10), time(14)),),
    }

    support = config.lines["support"]
    assert support.route == Destination(DestinationKind.RING_GROUP, "support")
    assert support.missed_calls.action == Destination(DestinationKind.EXTERNAL, "+14155550123")
    assert support.timezone == ZoneInfo("UTC")
    assert support.business_hours is None
    assert support.mailbox == "support@default"
    assert config.line_for_number("1000") is main


def test_example_file_is_the_issue_config() -> None:
    example = Path(__file__).parents[2] / "examples" / "callkeeper.yaml"
    assert load_config(example, ENV) == load(ISSUE_CONFIG)


def test_secrets_hide_their_values() -> None:
    config = load(ISSUE_CONFIG)
    assert isinstance(config.asterisk.password, Secret)
    assert config.asterisk.password.value == "ari-secret"
    assert "ari-secret" not in repr(config)
    assert API_TOKEN not in repr(config)


# -- defaults ------------------------------------------------------------------------------------


def test_everything_but_numbers_and_route_has_a_default() -> None:
    config = load(MINIMAL)
    assert config.asterisk == AsteriskConfig(
        url="http://127.0.0.1:8088", username="callkeeper", password=Secret("pw")
    )
    assert config.http == HttpConfig(token=Secret(API_TOKEN))
    assert config.storage == "sqlite:///var/lib/callkeeper/callkeeper.db"
    assert config.unknown_number == UnknownNumber()
    assert config.rate_limits == TextLimits()
    assert (config.shutdown_grace_seconds, config.log_level) == (30, "info")
    assert (config.users, config.ring_groups, config.ivrs, config.sms_providers, config.webhooks) == (
        {},
        {},
        {},
        {},
        (),
    )
    main = config.lines["main"]
    assert main.missed_calls == MissedCalls()
    assert (main.after_hours, main.welcome, main.short_abandon_seconds) == (
        Destination(DestinationKind.VOICEMAIL),
        None,
        0,
    )
    assert (main.business_hours, main.followup_text, main.timezone) == (None, None, ZoneInfo("UTC"))


def test_queue_with_only_max_wait_is_valid() -> None:
    config = load(
        ASTERISK
        + """\
users: {bob: {endpoint: PJSIP/bob}}
ring_groups:
  sales: {members: [bob], queue: {max_wait_seconds: 60}}
lines:
  main: {numbers: ["100"], route: ring_group:sales}
"""
    )
    group = config.ring_groups["sales"]
    assert group.queue == QueueConfig(max_wait_seconds=60)
    assert group.layers == (("bob",),)
    assert (group.strategy, group.ring_seconds, group.fishing_mode) == (Strategy.RING_ALL, 20, False)


def test_ivr_defaults() -> None:
    config = load(
        ASTERISK
        + """\
ivrs:
  menu: {prompt: "sound:menu", options: {"1": dead_end, "*": voicemail, "#": dead_end, "0": dead_end}}
lines:
  main: {numbers: ["100"], route: ivr:menu}
"""
    )
    menu = config.ivrs["menu"]
    assert list(menu.options) == ["1", "*", "#", "0"]
    assert (menu.timeout_seconds, menu.attempts, menu.no_input, menu.invalid) == (5, 3, None, None)
    assert menu.invalid_prompt == "sound:pm-invalid-option"


# -- the rest of the file ------------------------------------------------------------------------


def test_followup_text_from_the_issue() -> None:
    config = load(
        line_with('numbers: ["+12125550100"]\nroute: voicemail\n' + textwrap.dedent(FOLLOWUP), TWILIO)
    )
    assert config.lines["main"].followup_text == FollowupText(
        provider="twilio",
        sender="+12125550100",
        on=frozenset({"missed", "abandoned"}),
        delay_seconds=60,
        once_per_caller_hours=24,
        quiet_hours=QuietHours(time(21), time(8)),
        messages=DEFAULT_FOLLOWUP_MESSAGES,  # the issue's texts are the defaults
        allowed_countries=frozenset({"US", "CA"}),
    )


def test_followup_text_defaults_come_from_the_line() -> None:
    config = load(
        line_with(
            'numbers: ["1000", "+442071838750"]\nroute: voicemail\n'
            'followup_text: {messages: {missed: "Call {line_number}"}}\n',
            TWILIO,
        )
    )
    followup = config.lines["main"].followup_text
    assert followup is not None
    assert (followup.provider, followup.sender) == ("twilio", "+442071838750")
    assert followup.allowed_countries == frozenset({"GB"})
    assert followup.on == frozenset({"missed", "abandoned"})
    assert followup.messages == {**DEFAULT_FOLLOWUP_MESSAGES, "missed": "Call {line_number}"}
    assert followup.quiet_hours is None


def test_yaml_1_1_surprises_are_read_as_written() -> None:
    # `on` is a boolean key, 21:00 a base-60 integer, the date a timestamp and +1646... an integer
    # to a YAML 1.1 loader; the file means the text.
    config = load(
        line_with(
            """\
            numbers: [+12125550100, 1000]
            route: voicemail
            holidays: [2026-12-25]
            business_hours: {daily: [09:00-17:00]}
            followup_text: {on: [missed], quiet_hours: {start: 21:00, end: 08:00}}
            """,
            TWILIO,
        )
    )
    main = config.lines["main"]
    assert main.numbers == ("+12125550100", "1000")
    assert main.followup_text is not None
    assert main.followup_text.on == frozenset({"missed"})
    assert main.followup_text.quiet_hours == QuietHours(time(21), time(8))
    assert main.business_hours is not None
    assert main.business_hours.holidays == frozenset({date(2026, 12, 25)})


def test_sms_providers() -> None:
    config = load(
        MINIMAL
        + """\
sms_providers:
  twilio: {type: twilio, account_sid: AC123, auth_token: tw-secret}
  relay: {type: webhook, url: "https://sms.example.com/send", secret: s3}
  trunk: {type: asterisk, endpoint: "pjsip:trunk/{to}"}
"""
    )
    twilio = config.sms_providers["twilio"]
    assert twilio.type is SmsProviderType.TWILIO
    assert twilio.settings == {
        "account_sid": "AC123",
        "auth_token": "tw-secret",
        "base_url": "https://api.twilio.com",
    }
    assert isinstance(twilio.settings["auth_token"], Secret)
    assert config.sms_providers["relay"].settings == {"url": "https://sms.example.com/send", "secret": "s3"}
    assert isinstance(config.sms_providers["relay"].settings["secret"], Secret)
    assert config.sms_providers["trunk"].settings == {"endpoint": "pjsip:trunk/{to}"}


def test_webhooks_unknown_number_limits_and_daemon_settings() -> None:
    config = load(
        MINIMAL
        + """\
webhooks:
  - {url: "https://crm.example.com/hook", secret: "${HOOK_SECRET}", events: [call.ended, followup.sent]}
  - url: "http://localhost:9000/"
unknown_number: {action: dialplan, context: my-fallback}
rate_limits: {per_line_per_hour: 5, global_per_hour: 50, daily_cap: 100}
shutdown_grace_seconds: 0
log_level: debug
""",
        {"HOOK_SECRET": "hook"},
    )
    assert config.webhooks == (
        Webhook("https://crm.example.com/hook", Secret("hook"), frozenset({"call.ended", "followup.sent"})),
        Webhook("http://localhost:9000/"),
    )
    assert config.unknown_number == UnknownNumber(UnknownNumberAction.DIALPLAN, "unallocated", "my-fallback")
    assert config.rate_limits == TextLimits(5, 50, 100)
    assert (config.shutdown_grace_seconds, config.log_level) == (0, "debug")


def test_merge_keys_and_anchors() -> None:
    config = load(
        ASTERISK
        + """\
users:
  alice: {endpoint: PJSIP/alice}
ring_groups:
  base: &base {strategy: sequential, ring_seconds: 10, members: [alice]}
  evening: {<<: *base, ring_seconds: 30}
lines:
  main: {numbers: ["100"], route: ring_group:evening}
"""
    )
    assert config.ring_groups["evening"] == RingGroup("evening", (("alice",),), Strategy.SEQUENTIAL, 30)


# -- secrets -------------------------------------------------------------------------------------


def test_env_references_anywhere_in_a_string() -> None:
    config = load(
        """\
        asterisk: {url: "http://${ARI_HOST}:8088/", password: "${A}-${B}"}
        lines: {main: {numbers: ["100"], route: voicemail}}
        """,
        {"ARI_HOST": "pbx.internal", "A": "x", "B": "y"},
    )
    assert config.asterisk.url == "http://pbx.internal:8088/"
    assert config.asterisk.password == "x-y"


def test_missing_env_variable_names_it_with_path_and_line() -> None:
    [problem] = problems(ISSUE_CONFIG, {"CALLKEEPER_API_TOKEN": API_TOKEN})
    assert problem == ConfigProblem(
        "asterisk.password", 4, "environment variable CALLKEEPER_ARI_PASSWORD is not set"
    )


def test_malformed_env_reference() -> None:
    problem = problem_at("asterisk: {password: '${not closed'}\nlines: {}\n", "asterisk.password")
    assert "malformed" in problem.message


def test_secrets_from_files_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "ari").write_text("file-secret\n")
    (tmp_path / "token").write_text(f"  {API_TOKEN}  \n")
    (tmp_path / "twilio").write_text("tw\n")
    (tmp_path / "hook").write_text("hk\n")
    file = tmp_path / "callkeeper.yaml"
    file.write_text(
        """\
asterisk: {password_file: ari}
http: {listen: "0.0.0.0:8090", token_file: token}
lines: {main: {numbers: ["100"], route: voicemail}}
sms_providers: {twilio: {type: twilio, account_sid: AC1, auth_token_file: twilio}}
webhooks: [{url: "https://x.example/", secret_file: hook}]
"""
    )
    config = load_config(file, {})
    assert (config.asterisk.password, config.http.token) == ("file-secret", API_TOKEN)
    assert isinstance(config.asterisk.password, Secret)
    assert config.sms_providers["twilio"].settings["auth_token"] == "tw"
    assert config.webhooks[0].secret == "hk"


def test_secret_file_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    found = problems(
        """\
        asterisk: {password_file: missing}
        http: {token: t, token_file: empty}
        lines: {main: {numbers: ["100"], route: voicemail}}
        sms_providers: {t: {type: twilio, account_sid: AC1, auth_token_file: empty}}
        """,
        base_dir=tmp_path,
    )
    assert [(p.path, p.line) for p in found] == [
        ("asterisk.password_file", 1),
        ("http.token", 2),
        ("sms_providers.t.auth_token_file", 4),
    ]
    assert "cannot read" in found[0].message
    assert "not both" in found[1].message
    assert "is empty" in found[2].message


def test_missing_secret_mentions_the_file_alternative() -> None:
    problem = problem_at(
        "asterisk: {username: x}\nlines: {main: {numbers: ['1'], route: voicemail}}\n", "asterisk.password"
    )
    assert problem.message == "missing required key 'password' (or password_file)"


# -- problems ------------------------------------------------------------------------------------

BROKEN = """\
asterisk:
  pasword: x
  connect_timeout_seconds: fast
users:
  alice: {endpoint: PJSIP/alice}
  alice: {endpoint: PJSIP/alice2}
ring_groups:
  sales:
    ring_seconds: "20"
    fishing_mode: maybe
    members: alice
lines:
  main:
    numbers: ["100"]
    route: ring_group:sales
    timezone: [UTC]
  support:
    route: voicemail
colour: red
"""


def test_every_problem_is_collected_with_path_and_line() -> None:
    found = problems(BROKEN)
    assert [(p.line, p.path) for p in found] == [
        (1, "asterisk.password"),
        (2, "asterisk.pasword"),
        (3, "asterisk.connect_timeout_seconds"),
        (6, "users.alice"),
        (9, "ring_groups.sales.ring_seconds"),
        (10, "ring_groups.sales.fishing_mode"),
        (11, "ring_groups.sales.members"),
        (16, "lines.main.timezone"),
        (17, "lines.support.numbers"),
        (19, "colour"),
    ]
    messages = {p.path: p.message for p in found}
    assert messages["asterisk.pasword"] == "unknown key 'pasword' (did you mean 'password'?)"
    assert messages["asterisk.connect_timeout_seconds"] == "expected a number of seconds, got 'fast'"
    assert messages["users.alice"] == "duplicate key 'alice' (first at line 5)"
    assert messages["ring_groups.sales.ring_seconds"] == "expected an integer, got '20'"
    assert messages["ring_groups.sales.fishing_mode"] == "expected true or false, got 'maybe'"
    assert messages["ring_groups.sales.members"] == "expected a list, got 'alice'"
    assert messages["lines.main.timezone"] == "expected a string, got a list"
    assert messages["lines.support.numbers"] == "missing required key 'numbers'"
    assert messages["colour"] == "unknown key 'colour'"


def test_error_text_lists_every_problem_as_file_line_path_message() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(BROKEN, "/etc/callkeeper.yaml", ENV)
    lines = str(raised.value).splitlines()
    assert len(lines) == 11  # with http.token, required
    assert (
        lines[0]
        == "/etc/callkeeper.yaml:1: asterisk.password: missing required key 'password' (or password_file)"
    )
    assert lines[-1] == "/etc/callkeeper.yaml:19: colour: unknown key 'colour'"


def test_duplicate_keys_anywhere() -> None:
    found = problems(MINIMAL + "log_level: info\nlog_level: debug\n")
    assert [(p.path, p.line, p.message) for p in found] == [
        ("log_level", 5, "duplicate key 'log_level' (first at line 4)")
    ]


def test_wrong_choices_and_minimums() -> None:
    found = problems(
        MINIMAL
        + """\
log_level: loud
unknown_number: {action: drop, hangup_cause: gone}
shutdown_grace_seconds: -1
webhooks: [{url: "https://x.example/", events: [call.exploded]}]
"""
    )
    messages = {p.path: p.message for p in found}
    assert messages["log_level"] == "must be one of debug, info, warning, error, not 'loud'"
    assert messages["unknown_number.action"].startswith("must be one of hangup, dialplan")
    assert "unallocated" in messages["unknown_number.hangup_cause"]
    assert messages["shutdown_grace_seconds"] == "must be at least 0, not -1"
    assert "call.ended" in messages["webhooks.0.events.0"]


def test_sms_provider_type_is_required_and_known() -> None:
    found = problems(
        MINIMAL + "sms_providers:\n  a: {account_sid: x}\n  b: {type: pigeon}\n  c: {type: twilio}\n"
    )
    messages = {p.path: p.message for p in found}
    assert (
        messages["sms_providers.a.type"] == "missing required key 'type' (one of twilio, webhook, asterisk)"
    )
    assert messages["sms_providers.b.type"] == "must be one of twilio, webhook, asterisk, not 'pigeon'"
    assert messages["sms_providers.c.account_sid"] == "missing required key 'account_sid'"
    assert messages["sms_providers.c.auth_token"] == "missing required key 'auth_token' (or auth_token_file)"


def test_not_yaml_or_not_a_mapping() -> None:
    [syntax] = problems("asterisk:\n  url: [unclosed\nlines: {}\n")
    assert syntax.line == 3
    assert syntax.message.startswith("not valid YAML")
    assert problems("") == [ConfigProblem("", 1, "the file is empty")]
    [not_mapping] = problems("- a\n- b\n")
    assert not_mapping.message == "expected a mapping, got a list"
    [two_documents] = problems("a: 1\n---\nb: 2\n")
    assert two_documents.message.startswith("not valid YAML")


def test_empty_values_and_empty_sections() -> None:
    found = problems("asterisk: {password: ''}\nlines: {}\n")
    assert {(p.path, p.message) for p in found} == {
        ("asterisk.password", "must not be empty"),
        ("lines", "must have at least one entry"),
    }
    assert (
        problem_at(
            "asterisk: {password: x}\nlines:\n  main:\n    numbers:\n    route: voicemail\n",
            "lines.main.numbers",
        ).message
        == "missing value"
    )


# -- check_config --------------------------------------------------------------------------------


def test_check_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    good = tmp_path / "good.yaml"
    good.write_text(ISSUE_CONFIG)
    assert check_config(good) == []

    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    lines = check_config(bad)
    assert len(lines) == 11
    assert all(line.startswith(f"{bad}:") for line in lines)

    missing = tmp_path / "missing.yaml"
    [line] = check_config(missing)
    assert line.startswith(f"{missing}: cannot read the file")


def _paths(data: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    children: list[tuple[str | int, object]] = []
    if isinstance(data, dict):
        children = list(data.items())
    elif isinstance(data, list):
        children = list(enumerate(data))
    found = [path] if path else []
    for key, child in children:
        found += _paths(child, (*path, key))
    return found


def _replaced(data: object, path: tuple[str | int, ...], junk: object) -> object:
    if not path:
        return junk
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        changed = dict(data)
        if junk is _DELETE and not rest:
            del changed[head]
        else:
            changed[head] = _replaced(data[head], rest, junk)
        return changed
    assert isinstance(data, list) and isinstance(head, int)
    items = list(data)
    if junk is _DELETE and not rest:
        del items[head]
    else:
        items[head] = _replaced(data[head], rest, junk)
    return items


_DELETE = object()


FULL_CONFIG = (
    ISSUE_CONFIG
    + FOLLOWUP
    + TWILIO
    + """\
  relay: {type: webhook, url: "https://relay.example/", secret: s}
  trunk: {type: asterisk, endpoint: "pjsip:trunk/{to}"}
webhooks: [{url: "https://crm.example/", secret: s, events: [call.ended]}]
unknown_number: {action: dialplan, hangup_cause: busy, context: fallback}
rate_limits: {per_line_per_hour: 1, global_per_hour: 2, daily_cap: 3}
"""
)


def test_full_config() -> None:
    config = load(FULL_CONFIG)
    assert config.lines["support"].followup_text is not None
    assert set(config.sms_providers) == {"twilio", "relay", "trunk"}


@pytest.mark.parametrize("junk", [_DELETE, None, 0, 2.5, "x", [], ["x"], {}])
@pytest.mark.parametrize("text", [ISSUE_CONFIG, FULL_CONFIG], ids=["issue", "full"])
def test_any_damage_is_a_config_error_not_a_crash(text: str, junk: object) -> None:
    config = yaml.safe_load(text)
    for path in _paths(config):
        text = yaml.safe_dump(_replaced(config, path, junk))
        try:
            load(text)
        except ConfigError as error:
            assert error.problems, path


def test_asterisk_timeouts_are_positive_seconds() -> None:
    config = load(
        "asterisk: {password: pw, connect_timeout_seconds: 2.5, request_timeout_seconds: 30}\n" + ONE_LINE
    )
    assert (config.asterisk.connect_timeout_seconds, config.asterisk.request_timeout_seconds) == (2.5, 30.0)
    for bad in ("0", "-1", ".inf", ".nan"):
        problem = problem_at(
            f"asterisk: {{password: pw, connect_timeout_seconds: {bad}}}\n" + ONE_LINE,
            "asterisk.connect_timeout_seconds",
        )
        assert problem.message == f"must be a positive number of seconds, not {bad}"
