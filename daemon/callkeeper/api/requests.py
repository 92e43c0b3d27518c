"""What a request to the API may carry, checked: each helper answers a bad value with the 4xx that
names it (`ApiError`, turned into a JSON error by the server's middleware)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from aiohttp import web

from callkeeper.api.openapi import CALL_ID, E164, MAX_NAME_LENGTH
from callkeeper.live import Refusal

DIALER_REFUSALS = {Refusal.UNKNOWN: 404, Refusal.NOT_DIALABLE: 422, Refusal.NOBODY_FREE: 409}

CALL_ID_RE = re.compile(CALL_ID)
E164_RE = re.compile(E164)
LIMIT_RE = re.compile(r"[0-9]{1,6}")


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def error_response(
    status: int, error: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


def fail(status: int, error: str, detail: Any = None) -> NoReturn:
    raise ApiError(status, error, detail)


def parse_since(text: str, name: str = "since") -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().upper())
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        fail(
            400,
            f"invalid {name}",
            "an ISO 8601 date-time, e.g. 2024-05-01T08:00:00Z (naive means UTC; send '+' as %2B)",
        )


def limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    if "limit" not in params:
        return default
    if not LIMIT_RE.fullmatch(params["limit"]) or not 1 <= int(params["limit"]) <= maximum:
        fail(400, "invalid limit", f"an integer from 1 to {maximum}")
    return int(params["limit"])


def name_param(request: web.Request, key: str, known: Sequence[str], what: str) -> str:
    name = request.match_info[key]
    if len(name) > MAX_NAME_LENGTH or name not in known:
        fail(404, f"unknown {what}", {what: name[:MAX_NAME_LENGTH]})
    return name


def number_param(request: web.Request) -> str:
    number = request.match_info["number"]
    if not E164_RE.fullmatch(number):
        fail(400, "invalid number", "an E.164 number: + then 2 to 15 digits, e.g. +4930123456")
    return number


async def json_body(request: web.Request, field: str, choices: Sequence[str]) -> str:
    """The single field of a `{"<field>": "<one of choices>"}` body."""
    if request.content_type != "application/json":
        fail(415, "unsupported media type", "send Content-Type: application/json")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        fail(400, "invalid JSON")
    if not isinstance(body, dict):
        fail(422, "invalid body", f'a JSON object {{"{field}": ...}}')
    unknown = sorted(set(body) - {field})
    if unknown:
        fail(422, "unknown fields", {"fields": unknown})
    value = body.get(field)
    if value not in choices:
        fail(422, f"invalid {field}", {"allowed": list(choices)})
    assert isinstance(value, str)
    return value


DIALER_FIELDS = frozenset({"contact", "line", "user", "ring_group"})


async def object_body(request: web.Request, fields: frozenset[str]) -> dict[str, Any]:
    """A JSON object body with no other keys than `fields`."""
    if request.content_type != "application/json":
        fail(415, "unsupported media type", "send Content-Type: application/json")
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        fail(400, "invalid JSON")
    if not isinstance(body, dict):
        fail(422, "invalid body", "a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        fail(422, "unknown fields", {"fields": unknown})
    return body


async def dialer_body(request: web.Request) -> dict[str, str]:
    body = await object_body(request, DIALER_FIELDS)
    if not all(isinstance(value, str) for value in body.values()):
        fail(422, "invalid body", "every field is a string")
    if not isinstance(body.get("contact"), str) or not E164_RE.fullmatch(body["contact"]):
        fail(422, "invalid contact", "an E.164 number")
    if not isinstance(body.get("line"), str) or not body["line"]:
        fail(422, "invalid line", "a line name")
    if ("user" in body) == ("ring_group" in body):
        fail(422, "invalid body", "exactly one of user and ring_group")
    return body


FLAGS = {"true": True, "false": False}


def date_param(params: Mapping[str, str], key: str) -> date | None:
    if key not in params:
        return None
    try:
        return date.fromisoformat(params[key])
    except ValueError:
        fail(400, f"invalid {key}", "a date like 2024-05-01")


def choice_param(params: Mapping[str, str], key: str, choices: Sequence[str]) -> str | None:
    value = params.get(key)
    if value is not None and value not in choices:
        fail(400, f"invalid {key}", {"allowed": list(choices)})
    return value


def line_param(params: Mapping[str, str], known: Sequence[str]) -> frozenset[str] | None:
    line = params.get("line")
    if line is None:
        return None
    if line not in known:
        fail(404, "unknown line", {"allowed": list(known)})
    return frozenset({line})


def call_id_param(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if not CALL_ID_RE.fullmatch(call_id):
        fail(400, "invalid call id", "1 to 256 of A-Z a-z 0-9 . _ : @ + -")
    return call_id


def name_field(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH:
        fail(422, f"invalid {key}", "a user name")
    return value
