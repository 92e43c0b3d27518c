"""The committed JSON Schema is current, valid, and agrees with the loader on examples."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from callkeeper.config import json_schema
from tests.unit.test_config_loader import ENV, ISSUE_CONFIG, load, problems

EXAMPLE = Path(__file__).parents[2] / "examples" / "callkeeper.yaml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    committed = json.loads(json_schema.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(committed)
    return jsonschema.Draft202012Validator(committed)


def test_committed_schema_is_current() -> None:
    assert json_schema.SCHEMA_PATH.read_text() == json_schema.render(), (
        "regenerate it: python -m callkeeper.config.json_schema"
    )


def test_example_validates(validator: jsonschema.Draft202012Validator) -> None:
    assert [error.message for error in validator.iter_errors(yaml.safe_load(EXAMPLE.read_text()))] == []
    assert validator.is_valid(yaml.safe_load(ISSUE_CONFIG))


def test_schema_shows_the_model_defaults(validator: jsonschema.Draft202012Validator) -> None:
    schema = validator.schema
    assert isinstance(schema, Mapping)
    ring_group = schema["properties"]["ring_groups"]["additionalProperties"]
    assert ring_group["properties"]["ring_seconds"]["default"] == 20
    assert ring_group["properties"]["strategy"]["default"] == "ring_all"
    line = schema["properties"]["lines"]["additionalProperties"]
    assert line["properties"]["after_hours"]["default"] == "voicemail"
    assert schema["properties"]["http"]["default"] == {"listen": "127.0.0.1:8090"}


SMALL = {"asterisk": {"password": "pw"}, "lines": {"main": {"numbers": ["100"], "route": "voicemail"}}}


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**SMALL, **changes}


@pytest.mark.parametrize(
    "document",
    [
        SMALL,
        with_changes(asterisk={"password_file": "/run/secrets/ari"}),
        with_changes(asterisk={"password": "${ARI_PASSWORD}", "url": "${ARI_URL}"}),
        with_changes(http={"listen": "[::1]:8090"}),
        with_changes(
            sms_providers={
                "t": {"type": "twilio", "account_sid": "AC1", "auth_token_file": "/x"},
                "w": {"type": "webhook", "url": "https://x.example/"},
                "a": {"type": "asterisk", "endpoint": "pjsip:trunk/{to}"},
            }
        ),
        with_changes(ring_groups={"g": {"members": ["a"], "queue": {"max_wait_seconds": 60}}}),
    ],
)
def test_schema_accepts(validator: jsonschema.Draft202012Validator, document: dict[str, Any]) -> None:
    assert [error.message for error in validator.iter_errors(document)] == []


@pytest.mark.parametrize(
    "document",
    [
        with_changes(colour="red"),
        with_changes(asterisk={}),
        with_changes(asterisk={"password": "a", "password_file": "/b"}),
        with_changes(http={"listen": "127.0.0.1"}),
        with_changes(ring_groups={"g": {"members": ["a"], "layers": [["b"]]}}),
        with_changes(ring_groups={"g": {"strategy": "ring_all"}}),
        with_changes(ivrs={"m": {"prompt": "sound:x", "options": {"10": "voicemail"}}}),
        with_changes(lines={"main": {"numbers": ["100"]}}),
        with_changes(lines={"main": {"numbers": ["100"], "route": "queue:x"}}),
        with_changes(
            lines={"main": {"numbers": ["1"], "route": "voicemail", "business_hours": {"monday": []}}}
        ),
        with_changes(sms_providers={"t": {"type": "twilio", "account_sid": "AC1"}}),
        with_changes(sms_providers={"t": {"type": "pigeon"}}),
        with_changes(storage="mysql://x/y"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(
    validator: jsonschema.Draft202012Validator, document: dict[str, Any]
) -> None:
    assert not validator.is_valid(document)
    assert problems(yaml.safe_dump(document), ENV)


def test_the_loader_accepts_what_the_schema_accepts_here() -> None:
    load(yaml.safe_dump(SMALL))
