"""Password hashes, session cookies, CSRF tokens and the brake on wrong passwords (no I/O)."""

from __future__ import annotations

import io

import pytest

from callkeeper import cli
from callkeeper.config.loader import ConfigError, load_config_text
from callkeeper.web.passwords import hash_password, hash_problem, verify_password
from callkeeper.web.sessions import SESSION_SECONDS, BrakeRule, LoginBrake, SessionSigner

KEY = b"k" * 32
CHEAP = {"n": 2**14, "r": 8, "p": 1}


def test_a_password_matches_its_hash_and_nothing_else() -> None:
    encoded = hash_password("correct horse", **CHEAP)
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)
    assert not verify_password("", encoded)
    assert hash_password("correct horse", **CHEAP) != encoded  # salted


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain-text-password",
        "scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$20000$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    ],
)
def test_a_weak_or_foreign_hash_is_refused_and_never_matches(encoded: str) -> None:
    assert hash_problem(encoded) is not None
    assert not verify_password("anything", encoded)


def test_hash_password_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert cli.main(["hash-password"]) == 0
    encoded = capsys.readouterr().out.strip()
    assert hash_problem(encoded) is None
    assert verify_password("correct horse battery", encoded)


def test_hash_password_refuses_a_short_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["hash-password"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "at least 8 characters" in captured.err


def test_a_session_cookie_is_read_back_until_it_expires() -> None:
    signer = SessionSigner(KEY)
    session, cookie = signer.issue("alice", "scrypt$hash", now=1000.0)
    assert signer.read(cookie, now=1000.0 + SESSION_SECONDS - 1) == session
    assert signer.read(cookie, now=1000.0 + SESSION_SECONDS) is None


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    signer = SessionSigner(KEY)
    _, cookie = signer.issue("alice", "scrypt$hash", now=1000.0)
    payload, _, mac = cookie.partition(".")
    _, bob_cookie = signer.issue("bob", "scrypt$hash", now=1000.0)
    assert signer.read(f"{bob_cookie.partition('.')[0]}.{mac}", now=1000.0) is None
    assert signer.read(payload, now=1000.0) is None
    assert signer.read(f"{payload}.{mac[:-2]}AA", now=1000.0) is None
    assert SessionSigner(b"another key").read(cookie, now=1000.0) is None
    assert signer.read("garbage.garbage", now=1000.0) is None


def test_the_csrf_token_is_bound_to_the_session() -> None:
    signer = SessionSigner(KEY)
    first, _ = signer.issue("alice", "scrypt$hash")
    second, _ = signer.issue("alice", "scrypt$hash")
    token = signer.csrf_token(first.session_id)
    assert signer.csrf_valid(first.session_id, token)
    assert not signer.csrf_valid(second.session_id, token)
    assert not signer.csrf_valid(first.session_id, "")


def test_the_brake_stops_a_name_after_repeated_wrong_passwords() -> None:
    brake = LoginBrake(per_name=BrakeRule(3, 60), per_address=BrakeRule(10, 60))
    for second in range(3):
        assert brake.wait_seconds("Alice", "10.0.0.1", now=float(second)) == 0
        brake.failed("alice", "10.0.0.1", now=float(second))
    assert brake.wait_seconds("ALICE", "10.0.0.2", now=3.0) == pytest.approx(57.0)
    assert brake.wait_seconds("bob", "10.0.0.1", now=3.0) == 0
    assert brake.wait_seconds("alice", "10.0.0.1", now=60.5) == 0  # the first failure left the window


def test_the_brake_stops_an_address_that_tries_many_names() -> None:
    brake = LoginBrake(per_name=BrakeRule(3, 60), per_address=BrakeRule(5, 60))
    for index in range(5):
        brake.failed(f"user{index}", "10.0.0.9", now=float(index))
    assert brake.wait_seconds("someone-else", "10.0.0.9", now=5.0) > 0
    assert brake.wait_seconds("someone-else", "10.0.0.8", now=5.0) == 0


def test_a_right_password_clears_the_name_count() -> None:
    brake = LoginBrake(per_name=BrakeRule(3, 60))
    brake.failed("alice", "10.0.0.1", now=0.0)
    brake.failed("alice", "10.0.0.1", now=1.0)
    brake.succeeded("alice", "10.0.0.1")
    brake.failed("alice", "10.0.0.1", now=2.0)
    assert brake.wait_seconds("alice", "10.0.0.1", now=3.0) == 0


def test_a_right_password_gives_the_address_its_attempt_back() -> None:
    brake = LoginBrake(per_name=BrakeRule(3, 60), per_address=BrakeRule(2, 60))
    brake.failed("alice", "10.0.0.1", now=0.0)
    brake.succeeded("alice", "10.0.0.1")
    brake.failed("bob", "10.0.0.1", now=1.0)
    assert brake.wait_seconds("carol", "10.0.0.1", now=2.0) == 0


CONFIG = """\
asterisk: {url: "http://127.0.0.1:8088", username: callkeeper, password: secret}
users:
  alice: {endpoint: PJSIP/alice, web_password_hash: "%s"}
lines:
  main: {numbers: ["100"], route: user:alice}
http: {token: "0123456789abcdef0123456789abcdef"}
"""


def test_the_config_takes_only_a_hash_from_hash_password() -> None:
    encoded = hash_password("correct horse", **CHEAP)
    config = load_config_text(CONFIG % encoded, "callkeeper.yaml", {})
    assert config.users["alice"].web_password_hash == encoded
    with pytest.raises(ConfigError) as refused:
        load_config_text(CONFIG % "correct horse", "callkeeper.yaml", {})
    assert refused.value.lines() == [
        "callkeeper.yaml:3: users.alice.web_password_hash: "
        "not a hash from `callkeeper hash-password` (scrypt$N$r$p$SALT$HASH)"
    ]
