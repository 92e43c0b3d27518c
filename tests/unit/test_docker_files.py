"""docker/: the compose file, the image and the container config agree with each other and the repo."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from callkeeper.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def dockerfile(path: Path = DOCKER / "Dockerfile") -> dict[str, list[str]]:
    """Instruction -> its arguments, continuation lines joined."""
    instructions: dict[str, list[str]] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            instructions.setdefault(instruction.upper(), []).append(arguments.strip())
    return instructions


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (resolved) of the service's bind mounts."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = str((DOCKER / source).resolve())
    return mounts


def interpolated(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


def documented_variables(*, optional: bool = False) -> set[str]:
    """The variables env.example sets; with `optional`, also those it shows commented out."""
    pattern = r"^(?:# )?([A-Z_][A-Z0-9_]*)=" if optional else r"^([A-Z_][A-Z0-9_]*)="
    return set(re.findall(pattern, (DOCKER / "env.example").read_text(), re.MULTILINE))


def conf(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(path.read_text())
    return parser


def test_every_mounted_file_is_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, source in bind_mounts(service).items():
            assert Path(source).is_file(), f"{name}: {source} (for {target}) does not exist"
            assert Path(source).is_relative_to(ROOT)


def test_asterisk_gets_the_sample_configs_and_the_dialplan(compose: dict[str, Any]) -> None:
    mounts = bind_mounts(compose["services"]["asterisk"])

    assert mounts["/etc/asterisk/callkeeper.conf"] == str(ROOT / "dialplan" / "callkeeper.conf")
    for name in ("modules.conf", "extensions.conf", "pjsip.conf", "voicemail.conf"):
        assert mounts[f"/etc/asterisk/{name}"] == str(ROOT / "asterisk-conf" / name)
    assert all(
        volume.endswith(":ro") for volume in compose["services"]["asterisk"]["volumes"] if volume[0] in "./"
    )


def test_both_services_share_a_network(compose: dict[str, Any]) -> None:
    asterisk, callkeeper = compose["services"]["asterisk"], compose["services"]["callkeeper"]

    assert set(asterisk["networks"]) & set(callkeeper["networks"])
    assert set(callkeeper["networks"]) <= set(compose["networks"])


def test_callkeeper_runs_the_mounted_config(compose: dict[str, Any]) -> None:
    service = compose["services"]["callkeeper"]
    command = json.loads(dockerfile()["CMD"][-1])
    config_path = command[command.index("--config") + 1]

    assert bind_mounts(service)[config_path] == str(DOCKER / "callkeeper.yaml")
    context = (DOCKER / service["build"]["context"]).resolve()
    assert context == ROOT  # where .dockerignore is
    assert context / service["build"]["dockerfile"] == DOCKER / "Dockerfile"


def test_the_container_config_is_valid_and_points_at_the_asterisk_service(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in documented_variables():
        monkeypatch.setenv(name, "0123456789abcdef" * 2)

    config = load_config(DOCKER / "callkeeper.yaml")

    http = conf(DOCKER / "asterisk" / "etc" / "http.conf")
    assert config.asterisk.url == f"http://asterisk:{http['general']['bindport']}"
    assert "asterisk" in compose["services"]
    assert config.storage.startswith("sqlite:///var/lib/callkeeper/")
    assert "callkeeper-state:/var/lib/callkeeper" in compose["services"]["callkeeper"]["volumes"]
    assert config.http.host == "0.0.0.0"
    assert config.http.token is not None
    assert compose["services"]["callkeeper"]["ports"] == [
        f"127.0.0.1:${{CALLKEEPER_API_PORT:-{config.http.port}}}:{config.http.port}"
    ]
    assert f":{config.http.port}/healthz" in " ".join(dockerfile()["ENV"])


def test_every_variable_is_documented_in_env_example(compose: dict[str, Any]) -> None:
    compose_text = (DOCKER / "compose.yaml").read_text()
    needed = interpolated((DOCKER / "callkeeper.yaml").read_text()) | interpolated(compose_text)
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", compose_text))

    assert needed <= documented_variables(optional=True)
    assert required == documented_variables()  # the secrets, each to be filled in
    # Passed by name: the values stay in docker/.env (or the environment), never in the file.
    for name in ("asterisk", "callkeeper"):
        assert set(compose["services"][name]["environment"]) <= required
    assert ".env" in (DOCKER / ".gitignore").read_text().splitlines()


def test_the_asterisk_rtp_range_is_the_published_one(compose: dict[str, Any]) -> None:
    rtp = conf(DOCKER / "asterisk" / "etc" / "rtp.conf")
    start, end = rtp["general"]["rtpstart"], rtp["general"]["rtpend"]

    assert (
        f"${{ASTERISK_PUBLISH_ADDRESS:-0.0.0.0}}:${{ASTERISK_RTP_PORTS:-{start}-{end}}}:{start}-{end}/udp"
        in compose["services"]["asterisk"]["ports"]
    )


def test_stop_grace_outlasts_the_call_drain(compose: dict[str, Any]) -> None:
    assert compose["services"]["callkeeper"]["stop_grace_period"] == "45s"


def test_the_image() -> None:
    instructions = dockerfile()

    assert instructions["ARG"][0] == "BASE=python:3.11-slim"
    assert instructions["FROM"] == ["${BASE} AS build", "${BASE}"]
    assert instructions["USER"] == ["callkeeper"]
    assert json.loads(instructions["ENTRYPOINT"][-1]) == ["callkeeper"]
    assert json.loads(instructions["CMD"][-1]) == ["run", "--config", "/etc/callkeeper/callkeeper.yaml"]
    assert "urllib.request" in instructions["HEALTHCHECK"][-1]
    assert 'callkeeper = "callkeeper.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_the_asterisk_image_has_the_sandbox_packages_and_its_ari_user() -> None:
    instructions = dockerfile(DOCKER / "asterisk" / "Dockerfile")
    sandbox_packages = re.search(
        r'^PACKAGES="([^"]+)"', (ROOT / "scripts" / "asterisk-sandbox").read_text(), re.M
    )

    assert instructions["ARG"][0] == "BASE=debian:sid-slim"
    assert sandbox_packages is not None
    assert instructions["ARG"][1] == f'PACKAGES="{sandbox_packages[1]}"'
    assert instructions["USER"] == ["asterisk"]
    assert "core waitfullybooted" in instructions["HEALTHCHECK"][-1]
    entrypoint = (DOCKER / "asterisk" / "entrypoint").read_text()
    assert (
        f"[{yaml.safe_load((DOCKER / 'callkeeper.yaml').read_text())['asterisk']['username']}]" in entrypoint
    )


def test_the_build_context_lets_in_the_package_and_no_secrets() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert lines[0] == "*"  # an allow list: everything else, docker/.env included, stays out
    assert {"!daemon/", "!pyproject.toml"} <= set(lines)
