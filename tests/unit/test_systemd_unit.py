"""The shipped systemd unit keeps the settings the daemon and the install guide rely on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from callkeeper.config.model import Config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "callkeeper.service"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """systemd's unit syntax, as much as this file uses: sections, repeatable keys, `\\` continuations."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if line.startswith("["):
            assert line.endswith("]"), line
            section = unit.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals and section is not None, f"not KEY=value inside a section: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text())


def value(unit: Unit, section: str, key: str) -> str:
    """The effective value: the last assignment, as systemd reads it."""
    return unit[section][key][-1]


def test_the_parser_reads_repeats_and_continuations() -> None:
    parsed = parse_unit("# c\n[A]\nX=1\n; c\nX=\nY=a \\\n  b\n[B]\nZ = 2\n")

    assert parsed == {"A": {"X": ["1", ""], "Y": ["a b"]}, "B": {"Z": ["2"]}}


@pytest.mark.parametrize(
    ("section", "key", "expected"),
    [
        ("Unit", "After", "network-online.target asterisk.service"),
        ("Unit", "Wants", "network-online.target"),
        ("Unit", "StartLimitIntervalSec", "60"),
        ("Unit", "StartLimitBurst", "5"),
        ("Service", "Type", "notify"),
        ("Service", "NotifyAccess", "main"),
        ("Service", "ExecStart", "/usr/local/bin/callkeeper run --config /etc/callkeeper/callkeeper.yaml"),
        ("Service", "ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Service", "EnvironmentFile", "-/etc/callkeeper/env"),
        ("Service", "WatchdogSec", "30"),
        ("Service", "Restart", "on-failure"),
        ("Service", "RestartSec", "2"),
        ("Service", "User", "callkeeper"),
        ("Service", "Group", "callkeeper"),
        ("Service", "StateDirectory", "callkeeper"),
        ("Service", "ConfigurationDirectory", "callkeeper"),
        ("Service", "ProtectSystem", "strict"),
        ("Service", "ProtectHome", "yes"),
        ("Service", "PrivateTmp", "yes"),
        ("Service", "PrivateDevices", "yes"),
        ("Service", "NoNewPrivileges", "yes"),
        ("Service", "ProtectKernelTunables", "yes"),
        ("Service", "ProtectKernelModules", "yes"),
        ("Service", "ProtectKernelLogs", "yes"),
        ("Service", "ProtectControlGroups", "yes"),
        ("Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("Service", "RestrictNamespaces", "yes"),
        ("Service", "LockPersonality", "yes"),
        ("Service", "MemoryDenyWriteExecute", "yes"),
        ("Service", "SystemCallFilter", "@system-service"),
        ("Service", "CapabilityBoundingSet", ""),
        ("Install", "WantedBy", "multi-user.target"),
    ],
)
def test_setting(unit: Unit, section: str, key: str, expected: str) -> None:
    assert value(unit, section, key) == expected


def default(field: str) -> object:
    return next(f.default for f in dataclasses.fields(Config) if f.name == field)


def test_a_dedicated_user_not_a_dynamic_one(unit: Unit) -> None:
    assert "DynamicUser" not in unit["Service"]


def test_stop_timeout_outlasts_the_shutdown_grace(unit: Unit) -> None:
    grace = default("shutdown_grace_seconds")

    assert isinstance(grace, int)
    assert int(value(unit, "Service", "TimeoutStopSec")) > grace


def test_the_default_store_lives_in_the_state_directory(unit: Unit) -> None:
    directory = "/var/lib/" + value(unit, "Service", "StateDirectory")

    assert default("storage") == f"sqlite://{directory}/callkeeper.db"
