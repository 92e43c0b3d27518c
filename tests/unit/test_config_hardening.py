"""The config loader never crashes and never hangs: every hostile or careless file gives problems as
`FILE:LINE: PATH: message` (exit 2), numbers have ranges, templates no format specs, and no message
repeats a credential."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from callkeeper.cli import main
from callkeeper.config import loader
from callkeeper.config.loader import ConfigError, load_config, load_config_in_thread, load_config_text
from callkeeper.config.model import Config
from callkeeper.config.redaction import redact
from callkeeper.config.shapes import MAX_MERGE_DEPTH, MAX_VALUES
from tests.unit.test_config_loader import HTTP_TOKEN, MINIMAL, ONE_LINE, load, problem_at, problems

PROBLEM_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>[0-9]+): (?P<path>[\w.]+): (?P<message>.+)$")


def check_config_output(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `callkeeper check-config` prints for `text`, after asserting it exits 2 with no traceback."""
    file = tmp_path / "callkeeper.yaml"
    file.write_text(text if re.search(r"^http:", text, re.MULTILINE) else text + HTTP_TOKEN)
    assert main(["check-config", str(file)]) == 2
    output = capsys.readouterr()
    assert "Traceback" not in output.err
    return output.err.splitlines()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int abc", "expected a plain decimal integer, got 'abc'"),
        ("!!float abc", "expected an integer, got 'abc'"),
        ("9" * 5000, "must be at most 3600, not 9999999999"),
        ("-0x" + "f" * 5000, "expected a plain decimal integer, got '-0xfffffffffffffffffffffffffffff"),
        ("1:30:00", "expected a plain decimal integer, got '1:30:00'"),
        ("0x10", "expected a plain decimal integer, got '0x10'"),
        ("017", "expected a plain decimal integer, got the number 017"),
        ("!!int 09", "expected a plain decimal integer, got the number 09"),
    ],
)
def test_odd_integers_are_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    lines = check_config_output(tmp_path, MINIMAL + f"shutdown_grace_seconds: {value}\n", capsys)

    assert len(lines) == 1
    found = PROBLEM_LINE.match(lines[0])
    assert found is not None, lines
    assert (found["line"], found["path"]) == ("4", "shutdown_grace_seconds")
    assert found["message"].startswith(message)
    assert len(found["message"]) < 200


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!float abc", "expected a plain decimal number of seconds, got 'abc'"),
        ("!!float 1:2:x", "expected a plain decimal number of seconds, got '1:2:x'"),
        ("1:30:00.5", "expected a plain decimal number of seconds, got '1:30:00.5'"),
        ("1.0e+999", "must be at most 300 seconds, not 1.0e+999"),
        ("1e30", "expected a number of seconds, got '1e30'"),
    ],
)
def test_odd_seconds_are_problems(value: str, message: str) -> None:
    text = f"asterisk: {{password: pw, connect_timeout_seconds: {value}}}\n" + ONE_LINE

    assert problem_at(text, "asterisk.connect_timeout_seconds").message == message


@pytest.mark.parametrize("value", ["!!bool maybe", "!!bool 1", "!!bool ''"])
def test_odd_flags_are_problems(value: str) -> None:
    text = (
        MINIMAL
        + f"users: {{a: {{endpoint: PJSIP/a}}}}\nring_groups:\n  g: {{members: [a], fishing_mode: {value}}}\n"
    )

    problem = problem_at(text, "ring_groups.g.fishing_mode")
    assert problem.line == 6
    assert problem.message.startswith("expected true or false, got ")


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("shutdown_grace_seconds: {}", "shutdown_grace_seconds"),
        ("asterisk: {{password: pw, request_timeout_seconds: {}}}", "asterisk.request_timeout_seconds"),
        ("rate_limits: {{daily_cap: {}}}", "rate_limits.daily_cap"),
        ("ring_groups: {{g: {{members: [a], ring_seconds: {}}}}}", "ring_groups.g.ring_seconds"),
        (
            "ring_groups: {{g: {{members: [a], queue: {{max_wait_seconds: {}}}}}}}",
            "ring_groups.g.queue.max_wait_seconds",
        ),
        (
            "ring_groups: {{g: {{members: [a], queue: {{announce_position_seconds: {}}}}}}}",
            "ring_groups.g.queue.announce_position_seconds",
        ),
        (
            "ivrs: {{m: {{prompt: sound:x, options: {{'1': voicemail}}, timeout_seconds: {}}}}}",
            "ivrs.m.timeout_seconds",
        ),
        ("ivrs: {{m: {{prompt: sound:x, options: {{'1': voicemail}}, attempts: {}}}}}", "ivrs.m.attempts"),
    ],
)
def test_every_number_has_a_range(key: str, path: str) -> None:
    asterisk = "" if key.startswith("asterisk") else "asterisk: {password: pw}\n"
    users = "users: {a: {endpoint: PJSIP/a}}\n"
    text = asterisk + users + key.format(10**30) + "\n" + ONE_LINE

    assert problem_at(text, path).message.startswith("must be at most ")


def test_line_numbers_have_ranges() -> None:
    text = MINIMAL.replace(
        '{numbers: ["100"], route: voicemail}',
        '{numbers: ["100"], route: voicemail, short_abandon_seconds: 100000,'
        " missed_calls: {press_1_timeout_seconds: 100000}}",
    )

    found = {problem.path: problem.message for problem in problems(text)}
    assert found == {
        "lines.main.short_abandon_seconds": "must be at most 600, not 100000",
        "lines.main.missed_calls.press_1_timeout_seconds": "must be at most 60, not 100000",
    }


def test_a_self_referencing_merge_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = check_config_output(tmp_path, MINIMAL + "http: &h {<<: *h}\n", capsys)

    assert lines == [
        f"{tmp_path}/callkeeper.yaml:4: http: the merge key << brings in a mapping that contains it"
    ]


def nested_merges(width: int, depth: int) -> str:
    anchors = 'x0: &x0 {listen: "127.0.0.1:8090"}\n'
    for level in range(1, depth + 1):
        sources = ", ".join([f"*x{level - 1}"] * width)
        anchors += f"x{level}: &x{level} {{<<: [{sources}]}}\n"
    return MINIMAL + anchors + f"http: {{<<: *x{depth}}}\n"


def test_merges_nest_at_most_so_deep() -> None:
    text = nested_merges(width=2, depth=MAX_MERGE_DEPTH + 4)
    assert len(text) < 1500

    assert f"merge keys << nest deeper than {MAX_MERGE_DEPTH}" in {
        problem.message for problem in problems(text)
    }


def test_merges_expand_to_at_most_so_many_values() -> None:
    text = nested_merges(width=3, depth=12)  # 3**12 = 531,441 copies of one key

    assert [problem.message for problem in problems(text) if problem.path == ""] == [
        f"aliases and merge keys expand the file to more than {MAX_VALUES} values"
    ]


def test_aliases_and_merges_within_limits_still_work() -> None:
    config = load(MINIMAL + "users:\n  a: &phone {endpoint: PJSIP/a}\n  b: {<<: *phone}\n")

    assert config.users["b"].endpoint == "PJSIP/a"


def test_a_secret_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("x" * (64 * 1024 + 1))

    for name, message in (("/dev/zero", "not a regular file"), (str(big), "larger than 64 KiB")):
        text = f"asterisk: {{password_file: {name}}}\n" + ONE_LINE
        assert problem_at(text, "asterisk.password_file").message == f"cannot read {name}: {message}"


def test_the_file_must_be_at_most_one_mebibyte(tmp_path: Path) -> None:
    file = tmp_path / "callkeeper.yaml"
    file.write_text(MINIMAL + "#" * (1024 * 1024) + "\n")

    with pytest.raises(ConfigError) as raised:
        load_config(file, {})
    assert raised.value.lines() == [f"{file}: cannot read the file: larger than 1024 KiB"]
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_config_text(file.read_text(), "text.yaml", {})


@pytest.mark.parametrize(
    "template", ["{line_name:>999999999}", "{caller!r}", "{line_name:{caller}}", "{wait_seconds:.2f}"]
)
def test_templates_carry_no_format_specs(template: str) -> None:
    text = MINIMAL.replace(
        "route: voicemail}",
        'route: voicemail, followup_text: {provider: t, messages: {missed: "' + template + '"}}}',
    ).replace("lines:", "sms_providers: {t: {type: twilio, account_sid: AC1, auth_token: x}}\nlines:")
    text = text.replace('numbers: ["100"]', 'numbers: ["+12125550100"]')

    message = problem_at(text, "lines.main.followup_text.messages.missed").message
    assert message.startswith("write variables plainly, like {")


def test_outbound_dial_carries_no_format_spec() -> None:
    text = "asterisk: {password: pw, outbound_dial: 'PJSIP/{number:>99999}@trunk'}\n" + ONE_LINE

    assert problem_at(text, "asterisk.outbound_dial").message == (
        "write variables plainly, like {number}: no format specs or conversions"
    )


def test_storage_accepts_postgres_as_the_store_does() -> None:
    config = load("asterisk: {password: pw}\nstorage: postgres://ck:pw@db.example:5432/ck\n" + ONE_LINE)

    assert config.storage == "postgres://ck:pw@db.example:5432/ck"
    assert problem_at(
        "asterisk: {password: pw}\nstorage: postgres:///ck\n" + ONE_LINE, "storage"
    ).message.endswith("needs a host")


CREDENTIALS = """\
asterisk: {password: pw, url: "htp://ari:s3cret-ari@pbx:8088"}
storage: "mysql://ck:s3cret-db@db/ck"
lines:
  main: {numbers: ["100"], route: voicemail}
"""


def test_check_config_never_echoes_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = check_config_output(tmp_path, CREDENTIALS, capsys)

    assert [PROBLEM_LINE.match(line) is not None for line in lines] == [True, True]
    assert "s3cret" not in "\n".join(lines)
    assert "'htp://ari:***@pbx:8088'" in lines[0]
    assert "'mysql://ck:***@db/ck'" in lines[1]


def test_run_never_echoes_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "callkeeper.yaml"
    file.write_text(CREDENTIALS.replace("htp://ari", "ari"))

    assert main(["run", "--config", str(file)]) == 2
    err = capsys.readouterr().err
    assert "s3cret" not in err
    assert "'ari:***@pbx:8088'" in err


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://ck:p@ss@db:5432/ck", "postgresql://ck:***@db:5432/ck"),
        ("https://token123@hooks.example/x", "https://***@hooks.example/x"),
        ("got 'ari:secret@pbx:8088'", "got 'ari:***@pbx:8088'"),
        ("postgresql:///ck?host=/run&password=pw&user=ck", "postgresql:///ck?host=/run&password=***&user=ck"),
        ("1000@default and sqlite:////var/lib/ck.db", "1000@default and sqlite:////var/lib/ck.db"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


async def test_a_reload_parses_the_file_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "callkeeper.yaml"
    file.write_text(MINIMAL + HTTP_TOKEN)
    threads: list[threading.Thread] = []
    real_load = loader.load_config

    def recording_load(path: str | Path, env: dict[str, str] | None = None) -> Config:
        threads.append(threading.current_thread())
        return real_load(path, env)

    monkeypatch.setattr(loader, "load_config", recording_load)
    config = await load_config_in_thread(file)

    assert config.lines["main"].numbers == ("100",)
    assert threads and threads[0] is not threading.main_thread()
    file.write_text("shutdown_grace_seconds: !!int abc\n" + MINIMAL + HTTP_TOKEN)
    with pytest.raises(ConfigError, match="shutdown_grace_seconds: expected a plain decimal integer"):
        await load_config_in_thread(file)
