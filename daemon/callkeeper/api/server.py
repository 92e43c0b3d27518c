"""The HTTP API: call history, presence, line overrides, queues, text opt-outs, health and metrics.

It sees the rest of the daemon only through `CallHistory` (the store) and `DaemonControl` (the live
daemon). Every bad input is answered with a JSON error and a 4xx status.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from callkeeper.api.inbound_sms import TIMESTAMP_HEADER, read_twilio, read_webhook
from callkeeper.api.metrics import CONTENT_TYPE, render_metrics
from callkeeper.api.openapi import (
    CALL_ID,
    DEFAULT_LIMIT,
    E164,
    LINE_MODES,
    MAX_BODY_BYTES,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    OUTCOMES,
    SETTABLE_PRESENCE,
    openapi_document,
)
from callkeeper.config.model import HttpConfig, Secret
from callkeeper.followups.providers import SIGNATURE_HEADER
from callkeeper.inbox.model import DEFAULT_INBOX_LIMIT, MAX_INBOX_LIMIT, InboxError, InboxFilter, InboxState
from callkeeper.inbox.service import InboxService
from callkeeper.live import DialerRejected, MetricsSnapshot, QueuedCaller, Refusal
from callkeeper.records import CallRecord, Outcome, Reason, now_utc, utc_iso

log = structlog.get_logger(__name__)

STORE_CHECK_SECONDS = 2.0
MIN_TOKEN_LENGTH = 32
MAX_LOGGED_PATH = 200
OPT_OUT_SOURCE = "api"

DIALER_REFUSALS = {Refusal.UNKNOWN: 404, Refusal.NOT_DIALABLE: 422, Refusal.NOBODY_FREE: 409}

CALL_ID_RE = re.compile(CALL_ID)
E164_RE = re.compile(E164)
LIMIT_RE = re.compile(r"[0-9]{1,6}")


class OptOutEntry(Protocol):
    """A number that asked not to receive follow-up texts (the store's `OptOut` is one)."""

    @property
    def number(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def at(self) -> datetime: ...


class CallHistory(Protocol):
    """What the API reads and writes in the store."""

    async def list_calls(
        self,
        *,
        limit: int,
        since: datetime | None,
        line: str | None,
        outcome: str | None,
        until: datetime | None = None,
    ) -> list[CallRecord]:
        """Newest first by `started_at`, each with its texts and webhooks; `since` (UTC) is inclusive,
        `until` exclusive."""

    async def get_call(self, call_id: str) -> CallRecord | None: ...

    async def healthy(self) -> bool: ...

    async def outbox_depth(self) -> dict[str, int]:
        """Items per status: pending, sending, sent, failed, held, cancelled."""

    async def set_opt_out(self, number: str, opted_out: bool, source: str, now: datetime) -> None: ...

    async def list_opt_outs(self) -> Sequence[OptOutEntry]:
        """Numbers currently opted out."""

    async def inbound_message_seen(self, provider: str, message_id: str) -> bool:
        """Whether a provider's message id was remembered before (on any host)."""

    async def remember_inbound_message(self, provider: str, message_id: str, now: datetime) -> bool: ...


class DaemonControl(Protocol):
    """The live daemon, as the API sees it. Every method is quick and does no I/O."""

    def ari_ready(self) -> bool: ...

    def config_loaded(self) -> bool: ...

    def missing_sounds(self) -> Mapping[str, Sequence[str]]:
        """Sounds the config plays that Asterisk lacks, with the YAML paths naming them."""

    def user_names(self) -> Sequence[str]: ...

    def line_names(self) -> Sequence[str]: ...

    def presence(self, user: str) -> str:
        """One of `openapi.PRESENCE_STATES`."""

    def set_presence(self, user: str, away: bool) -> None: ...

    def line_override(self, line: str) -> str:
        """One of `openapi.LINE_MODES`."""

    def set_line_override(self, line: str, mode: str) -> None: ...

    def queues(self) -> Mapping[str, Sequence[QueuedCaller]]:
        """Callers waiting, by ring group, longest waiting first."""

    def metrics(self) -> MetricsSnapshot: ...

    def dial(self, contact: str, line: str, user: str | None, ring_group: str | None) -> str:
        """Start a progressive-dialer call; returns its id or raises DialerRejected."""

    def inbound_sms_secret(self, provider: str) -> tuple[str, str] | None:
        """(provider type, the secret its inbound webhook is signed with), or None if unknown."""


class ApiConfigError(ValueError):
    """The HTTP settings would expose the API unsafely."""


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def _error_response(
    status: int, error: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


def _fail(status: int, error: str, detail: Any = None) -> NoReturn:
    raise ApiError(status, error, detail)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    response = await handler(request)
    log.debug(
        "http_request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.monotonic() - started) * 1000, 1),
    )
    return response


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error.status, error.error, error.detail, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return _error_response(error.status, error.reason.lower(), None, allow)
    except Exception:
        log.exception("api_handler_failed", method=request.method, path=request.path)
        return _error_response(500, "internal error")


def _bearer_auth(token: Secret) -> Middleware:
    expected = token.value.encode()
    challenge = {"WWW-Authenticate": 'Bearer realm="callkeeper"'}

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz" or INBOUND_SMS_PATH.fullmatch(request.path):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "authentication required", "send Authorization: Bearer <token>", challenge)
        if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected):
            raise ApiError(401, "invalid token", None, challenge)
        return await handler(request)

    return check


def _host_name(header: str) -> str:
    """The name or address of a `Host` header, without its port and brackets, lower case."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if header.count(":") == 1 else header.lower()


def allowed_host(http: HttpConfig, header: str) -> bool:
    """Whether a request with this `Host` header is meant for us. A browser page that rebinds its own
    DNS name to this address (DNS rebinding) still sends its own name, and is refused. Allowed: the
    listen address, `http.names`, the host of `http.public_url`, `localhost` and loopback addresses
    when listening on loopback, and any address of this host when listening on all of them."""
    name = _host_name(header)
    names = {http.host.lower(), *(known.lower() for known in http.names)}
    if http.public_url is not None:
        names.add((urlsplit(http.public_url).hostname or "").lower())
    if is_loopback(http.host):
        names.add("localhost")
    if name in names:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if is_loopback(http.host):
        return address.is_loopback
    try:
        listen = ipaddress.ip_address(http.host)
    except ValueError:
        return False
    return listen.is_unspecified or listen == address


def _host_check(http: HttpConfig) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz" or allowed_host(http, request.headers.get("Host", "")):
            return await handler(request)
        log.warning("http_unknown_host", path=request.path[:MAX_LOGGED_PATH])
        raise ApiError(421, "unknown host", "the Host header names no address or name of this server")

    return check


CALLS_QUERY = ("limit", "since", "until", "line", "outcome", "format")
INBOX_QUERY = (
    "state",
    "line",
    "limit",
    "outcome",
    "reason",
    "number",
    "from",
    "to",
    "show_short_abandons",
    "show_ignored",
)
REPORT_QUERY = ("line", "from", "to")
QUERY_PARAMETERS = {
    "/api/v1/calls": CALLS_QUERY,
    "/api/v1/inbox": INBOX_QUERY,
    "/api/v1/reports/daily": REPORT_QUERY,
}
# The provider signs these requests itself: they carry no bearer token.
INBOUND_SMS_PATH = re.compile(r"/api/v1/sms/[^/]+/inbound")
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@web.middleware
async def _known_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown or repeated query parameters are refused, so a misspelt filter never silently widens a list."""
    if request.match_info.http_exception is not None:
        return await handler(request)
    resource = request.match_info.route.resource
    allowed = QUERY_PARAMETERS.get(resource.canonical, ()) if resource is not None else ()
    seen: set[str] = set()
    for key, _ in request.query.items():
        if key not in allowed:
            _fail(400, "unknown query parameter", {"parameter": key, "allowed": list(allowed)})
        if key in seen:
            _fail(400, "repeated query parameter", {"parameter": key})
        seen.add(key)
    return await handler(request)


def _parse_since(text: str, name: str = "since") -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().upper())
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        _fail(
            400,
            f"invalid {name}",
            "an ISO 8601 date-time, e.g. 2024-05-01T08:00:00Z (naive means UTC; send '+' as %2B)",
        )


def _limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    if "limit" not in params:
        return default
    if not LIMIT_RE.fullmatch(params["limit"]) or not 1 <= int(params["limit"]) <= maximum:
        _fail(400, "invalid limit", f"an integer from 1 to {maximum}")
    return int(params["limit"])


def _name_param(request: web.Request, key: str, known: Sequence[str], what: str) -> str:
    name = request.match_info[key]
    if len(name) > MAX_NAME_LENGTH or name not in known:
        _fail(404, f"unknown {what}", {what: name[:MAX_NAME_LENGTH]})
    return name


def _number_param(request: web.Request) -> str:
    number = request.match_info["number"]
    if not E164_RE.fullmatch(number):
        _fail(400, "invalid number", "an E.164 number: + then 2 to 15 digits, e.g. +4930123456")
    return number


async def _json_body(request: web.Request, field: str, choices: Sequence[str]) -> str:
    """The single field of a `{"<field>": "<one of choices>"}` body."""
    if request.content_type != "application/json":
        _fail(415, "unsupported media type", "send Content-Type: application/json")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        _fail(400, "invalid JSON")
    if not isinstance(body, dict):
        _fail(422, "invalid body", f'a JSON object {{"{field}": ...}}')
    unknown = sorted(set(body) - {field})
    if unknown:
        _fail(422, "unknown fields", {"fields": unknown})
    value = body.get(field)
    if value not in choices:
        _fail(422, f"invalid {field}", {"allowed": list(choices)})
    assert isinstance(value, str)
    return value


DIALER_FIELDS = frozenset({"contact", "line", "user", "ring_group"})


async def _object_body(request: web.Request, fields: frozenset[str]) -> dict[str, Any]:
    """A JSON object body with no other keys than `fields`."""
    if request.content_type != "application/json":
        _fail(415, "unsupported media type", "send Content-Type: application/json")
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        _fail(400, "invalid JSON")
    if not isinstance(body, dict):
        _fail(422, "invalid body", "a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        _fail(422, "unknown fields", {"fields": unknown})
    return body


async def _dialer_body(request: web.Request) -> dict[str, str]:
    body = await _object_body(request, DIALER_FIELDS)
    if not all(isinstance(value, str) for value in body.values()):
        _fail(422, "invalid body", "every field is a string")
    if not isinstance(body.get("contact"), str) or not E164_RE.fullmatch(body["contact"]):
        _fail(422, "invalid contact", "an E.164 number")
    if not isinstance(body.get("line"), str) or not body["line"]:
        _fail(422, "invalid line", "a line name")
    if ("user" in body) == ("ring_group" in body):
        _fail(422, "invalid body", "exactly one of user and ring_group")
    return body


CALL_FORMATS = ("json", "csv")
FORMULA_STARTS = frozenset("=+-@\t\r")
PLAIN_NUMBER_RE = re.compile(r"[+-]?[0-9]+")
CSV_COLUMNS = (
    "id",
    "direction",
    "line",
    "caller",
    "dialed",
    "started_at",
    "ended_at",
    "outcome",
    "reason",
    "short",
    "answered_by",
    "voicemail_seconds",
    "texts",
    "host",
)


def _csv_cell(value: Any) -> Any:
    """A spreadsheet runs a cell starting with = + - @ as a formula: such text gets a leading ', unless it
    is a plain number (a phone number like +4930123456 stays as it is)."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not PLAIN_NUMBER_RE.fullmatch(value):
        return "'" + value
    return value


def calls_csv(calls: Sequence[CallRecord]) -> str:
    """The records as CSV with a header row, one row per call."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for call in calls:
        row = call.to_json()
        row["voicemail_seconds"] = call.voicemail.seconds if call.voicemail and call.voicemail.left else ""
        row["texts"] = " ".join(f"{f.status}:{f.to}" for f in call.followups if f.kind == "sms")
        row["short"] = "true" if call.short else "false"
        writer.writerow([_csv_cell(row[column]) if row[column] is not None else "" for column in CSV_COLUMNS])
    return out.getvalue()


def _opt_out_json(entry: OptOutEntry) -> dict[str, Any]:
    return {"number": entry.number, "source": entry.source, "at": utc_iso(entry.at)}


class _Api:
    def __init__(self, history: CallHistory, control: DaemonControl, http: HttpConfig) -> None:
        self.history = history
        self.control = control
        self.http = http

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        checks = {
            "ari": self.control.ari_ready(),
            "config": self.control.config_loaded(),
            "store": await self._store_healthy(),
        }
        ready = all(checks.values())
        # A missing prompt is named, not fatal: the calls that would play it go on without it.
        detail = {
            "missing_sounds": {sound: list(paths) for sound, paths in self.control.missing_sounds().items()}
        }
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks, "detail": detail},
            status=200 if ready else 503,
        )

    async def _store_healthy(self) -> bool:
        try:
            async with asyncio.timeout(STORE_CHECK_SECONDS):
                return await self.history.healthy()
        except Exception as error:
            log.warning("store_health_check_failed", error=repr(error))
            return False

    async def metrics(self, request: web.Request) -> web.Response:
        depth: dict[str, int] | None
        try:
            async with asyncio.timeout(STORE_CHECK_SECONDS):
                depth = await self.history.outbox_depth()
        except Exception as error:
            log.warning("outbox_depth_failed", error=repr(error))
            depth = None
        text = render_metrics(self.control.metrics(), depth)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def list_calls(self, request: web.Request) -> web.Response:
        params = request.query
        output = params.get("format", "json")
        if output not in CALL_FORMATS:
            _fail(400, "invalid format", {"allowed": list(CALL_FORMATS)})
        # A spreadsheet download takes as much as one request may.
        limit = _limit_param(params, MAX_LIMIT if output == "csv" else DEFAULT_LIMIT, MAX_LIMIT)
        since = _parse_since(params["since"]) if "since" in params else None
        until = _parse_since(params["until"], "until") if "until" in params else None
        line = params.get("line")
        if line is not None and not 1 <= len(line) <= MAX_NAME_LENGTH:
            _fail(400, "invalid line", f"a line name of 1 to {MAX_NAME_LENGTH} characters")
        outcome = params.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            _fail(400, "invalid outcome", {"allowed": list(OUTCOMES)})
        calls = await self.history.list_calls(
            limit=limit, since=since, line=line, outcome=outcome, until=until
        )
        if output == "csv":
            return web.Response(
                text=calls_csv(calls),
                content_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
            )
        return web.json_response({"calls": [call.to_json() for call in calls]})

    async def get_call(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        if not CALL_ID_RE.fullmatch(call_id):
            _fail(400, "invalid call id", "1 to 256 of A-Z a-z 0-9 . _ : @ + -")
        record = await self.history.get_call(call_id)
        if record is None:
            _fail(404, "unknown call", {"id": call_id})
        return web.json_response(record.to_json())

    def _user_json(self, name: str) -> dict[str, str]:
        return {"name": name, "presence": self.control.presence(name)}

    async def list_users(self, request: web.Request) -> web.Response:
        return web.json_response({"users": [self._user_json(name) for name in self.control.user_names()]})

    async def get_presence(self, request: web.Request) -> web.Response:
        name = _name_param(request, "name", self.control.user_names(), "user")
        return web.json_response(self._user_json(name))

    async def put_presence(self, request: web.Request) -> web.Response:
        name = _name_param(request, "name", self.control.user_names(), "user")
        presence = await _json_body(request, "presence", SETTABLE_PRESENCE)
        self.control.set_presence(name, away=presence == "away")
        log.info("presence_set_by_api", user=name, presence=presence)
        return web.json_response(self._user_json(name))

    def _line_json(self, name: str) -> dict[str, str]:
        return {"name": name, "override": self.control.line_override(name)}

    async def list_lines(self, request: web.Request) -> web.Response:
        return web.json_response({"lines": [self._line_json(name) for name in self.control.line_names()]})

    async def put_line_override(self, request: web.Request) -> web.Response:
        name = _name_param(request, "name", self.control.line_names(), "line")
        mode = await _json_body(request, "mode", LINE_MODES)
        self.control.set_line_override(name, mode)
        log.info("line_override_set_by_api", line=name, mode=mode)
        return web.json_response(self._line_json(name))

    async def list_queues(self, request: web.Request) -> web.Response:
        queues = {
            group: [
                {"call_id": c.call_id, "caller": c.caller, "waiting_seconds": c.waiting_seconds}
                for c in callers
            ]
            for group, callers in self.control.queues().items()
        }
        return web.json_response({"queues": queues})

    async def dial(self, request: web.Request) -> web.Response:
        body = await _dialer_body(request)
        try:
            call_id = self.control.dial(
                body["contact"], body["line"], body.get("user"), body.get("ring_group")
            )
        except DialerRejected as rejected:
            _fail(DIALER_REFUSALS[rejected.why], str(rejected))
        return web.json_response({"id": call_id}, status=202)

    async def inbound_sms(self, request: web.Request) -> web.Response:
        """A reply to a follow-up text: STOP opts the sender out, START back in. Each provider message
        is taken once: a replay is refused."""
        provider = request.match_info["provider"]
        found = self.control.inbound_sms_secret(provider)
        if found is None:
            _fail(404, "unknown provider")
        kind, secret = found
        raw = await request.read()
        headers = request.headers
        if kind == "twilio":
            text = read_twilio(secret, self._signed_url(request), raw, headers.get("X-Twilio-Signature", ""))
        else:
            signature, timestamp = headers.get(SIGNATURE_HEADER, ""), headers.get(TIMESTAMP_HEADER, "")
            text = read_webhook(secret, raw, signature, timestamp)
        if text is None:
            log.warning("inbound_sms_refused", provider=provider, reason="signature, timestamp or message")
            _fail(403, "invalid signature or message")
        # Remembered once applied: a store failure in between leaves the provider's retry welcome.
        if await self.history.inbound_message_seen(provider, text.message_id):
            log.warning("inbound_sms_refused", provider=provider, reason="replayed")
            _fail(409, "message already received")
        if text.opt_out is not None and E164_RE.fullmatch(text.sender):
            await self.history.set_opt_out(text.sender, text.opt_out, f"sms:{provider}", now_utc())
            log.info("opt_out_set_by_text", number=text.sender, opted_out=text.opt_out, provider=provider)
        await self.history.remember_inbound_message(provider, text.message_id, now_utc())
        if kind == "twilio":
            return web.Response(text=TWIML_EMPTY, content_type="text/xml")
        return web.json_response({"opted_out": text.opt_out})

    def _signed_url(self, request: web.Request) -> str:
        """The URL the provider posted to, which it signed: behind a reverse proxy `http.public_url`
        with the path the proxy passed on, else the URL as this server sees it."""
        if self.http.public_url is not None:
            return self.http.public_url + request.rel_url.path_qs
        try:
            return str(request.url)
        except ValueError:
            log.warning("inbound_sms_refused", reason="unreadable Host header")
            _fail(400, "invalid Host header")

    async def list_opt_outs(self, request: web.Request) -> web.Response:
        entries = await self.history.list_opt_outs()
        return web.json_response({"opt_outs": [_opt_out_json(entry) for entry in entries]})

    async def get_opt_out(self, request: web.Request) -> web.Response:
        number = _number_param(request)
        return web.json_response(await self._opt_out_state(number))

    async def put_opt_out(self, request: web.Request) -> web.Response:
        return await self._set_opt_out(request, opted_out=True)

    async def delete_opt_out(self, request: web.Request) -> web.Response:
        return await self._set_opt_out(request, opted_out=False)

    async def _set_opt_out(self, request: web.Request, *, opted_out: bool) -> web.Response:
        number = _number_param(request)
        await self.history.set_opt_out(number, opted_out, OPT_OUT_SOURCE, now_utc())
        log.info("opt_out_set_by_api", number=number, opted_out=opted_out)
        return web.json_response(await self._opt_out_state(number))

    async def _opt_out_state(self, number: str) -> dict[str, Any]:
        for entry in await self.history.list_opt_outs():
            if entry.number == number:
                return {"opted_out": True, **_opt_out_json(entry)}
        return {"number": number, "opted_out": False, "source": None, "at": None}


HANDLED_FIELDS = frozenset({"by", "note"})
CALLBACK_FIELDS = frozenset({"user"})
REPORT_DAYS_DEFAULT = 7
FLAGS = {"true": True, "false": False}


def _date_param(params: Mapping[str, str], key: str) -> date | None:
    if key not in params:
        return None
    try:
        return date.fromisoformat(params[key])
    except ValueError:
        _fail(400, f"invalid {key}", "a date like 2024-05-01")


def _choice_param(params: Mapping[str, str], key: str, choices: Sequence[str]) -> str | None:
    value = params.get(key)
    if value is not None and value not in choices:
        _fail(400, f"invalid {key}", {"allowed": list(choices)})
    return value


def _line_param(params: Mapping[str, str], known: Sequence[str]) -> frozenset[str] | None:
    line = params.get("line")
    if line is None:
        return None
    if line not in known:
        _fail(404, "unknown line", {"allowed": list(known)})
    return frozenset({line})


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if not CALL_ID_RE.fullmatch(call_id):
        _fail(400, "invalid call id", "1 to 256 of A-Z a-z 0-9 . _ : @ + -")
    return call_id


def _name_field(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH:
        _fail(422, f"invalid {key}", "a user name")
    return value


class _InboxApi:
    """The missed-call inbox, its voicemail and the daily report."""

    def __init__(self, inbox: InboxService, control: DaemonControl) -> None:
        self.inbox = inbox
        self.control = control

    async def list_items(self, request: web.Request) -> web.Response:
        params = request.query
        outcome = _choice_param(params, "outcome", OUTCOMES)
        reason = _choice_param(params, "reason", [r.value for r in Reason])
        number = params.get("number")
        if number is not None and not re.fullmatch(r"[0-9+*#]{1,32}", number):
            _fail(400, "invalid number", "1 to 32 of 0-9 + * #")
        where = InboxFilter(
            state=InboxState(_choice_param(params, "state", [s.value for s in InboxState]) or "open"),
            lines=_line_param(params, self.control.line_names()),
            outcome=Outcome(outcome) if outcome else None,
            reason=Reason(reason) if reason else None,
            since=_date_param(params, "from"),
            until=_date_param(params, "to"),
            number=number,
            show_short_abandons=FLAGS[_choice_param(params, "show_short_abandons", list(FLAGS)) or "false"],
            show_ignored=FLAGS[_choice_param(params, "show_ignored", list(FLAGS)) or "false"],
            limit=_limit_param(params, DEFAULT_INBOX_LIMIT, MAX_INBOX_LIMIT),
        )
        items = await self.inbox.list(where)
        return web.json_response({"items": [item.to_json() for item in items]})

    async def get_item(self, request: web.Request) -> web.Response:
        call_id = _call_id(request)
        item = await self.inbox.item(call_id)
        if item is None:
            _fail(404, "no inbox item has this call", {"call_id": call_id})
        return web.json_response(item.to_json())

    async def mark_handled(self, request: web.Request) -> web.Response:
        call_id = _call_id(request)
        body = await _object_body(request, HANDLED_FIELDS)
        by = _name_field(body, "by")
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            _fail(422, "invalid note", "a text or null")
        try:
            item = await self.inbox.mark_handled(call_id, by, note)
        except InboxError as error:
            _fail(error.status, str(error))
        log.info("inbox_item_handled", call_id=call_id, by=by)
        return web.json_response(item.to_json())

    async def call_back(self, request: web.Request) -> web.Response:
        call_id = _call_id(request)
        user = _name_field(await _object_body(request, CALLBACK_FIELDS), "user")
        try:
            callback_id = await self.inbox.call_back(call_id, user)
        except InboxError as error:
            _fail(error.status, str(error))
        except DialerRejected as rejected:
            _fail(DIALER_REFUSALS[rejected.why], str(rejected))
        log.info("inbox_callback", call_id=call_id, user=user, callback_id=callback_id)
        return web.json_response({"call_id": callback_id}, status=202)

    async def voicemail(self, request: web.Request) -> web.StreamResponse:
        call_id = _call_id(request)
        try:
            audio = await self.inbox.voicemail_audio(call_id)
        except InboxError as error:
            _fail(error.status, str(error))
        return web.FileResponse(audio.path, headers={"Content-Type": audio.content_type})

    async def daily_report(self, request: web.Request) -> web.Response:
        params = request.query
        lines = _line_param(params, self.control.line_names())
        until = _date_param(params, "to") or now_utc().date()
        since = _date_param(params, "from") or until - timedelta(days=REPORT_DAYS_DEFAULT - 1)
        try:
            rows = await self.inbox.daily_report(lines, since, until)
        except InboxError as error:
            _fail(error.status, str(error))
        return web.json_response({"rows": [row.to_json() for row in rows]})


def build_app(
    history: CallHistory, control: DaemonControl, http: HttpConfig, inbox: InboxService | None = None
) -> web.Application:
    """The API application: every route but `/healthz` requires `http.token` as a bearer token and a
    `Host` header naming this server (`allowed_host`). Without `inbox` the inbox, voicemail and report
    routes are absent."""
    if http.token is None:
        raise ApiConfigError("http.token is required: the API is never served without a token")
    if len(http.token.value) < MIN_TOKEN_LENGTH:
        raise ApiConfigError(f"http.token must be at least {MIN_TOKEN_LENGTH} characters")
    middlewares: list[Middleware] = [
        _access_log,
        _json_errors,
        _host_check(http),
        _bearer_auth(http.token),
        _known_query,
    ]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    api = _Api(history, control, http)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/api/v1/openapi.json", api.openapi)
    app.router.add_get("/api/v1/calls", api.list_calls)
    app.router.add_get("/api/v1/calls/{call_id}", api.get_call)
    app.router.add_get("/api/v1/users", api.list_users)
    app.router.add_get("/api/v1/users/{name}/presence", api.get_presence)
    app.router.add_put("/api/v1/users/{name}/presence", api.put_presence)
    app.router.add_get("/api/v1/lines", api.list_lines)
    app.router.add_put("/api/v1/lines/{name}/override", api.put_line_override)
    app.router.add_get("/api/v1/queues", api.list_queues)
    app.router.add_post("/api/v1/dialer/calls", api.dial)
    app.router.add_post("/api/v1/sms/{provider}/inbound", api.inbound_sms)
    app.router.add_get("/api/v1/opt-outs", api.list_opt_outs)
    app.router.add_get("/api/v1/opt-outs/{number}", api.get_opt_out)
    app.router.add_put("/api/v1/opt-outs/{number}", api.put_opt_out)
    app.router.add_delete("/api/v1/opt-outs/{number}", api.delete_opt_out)
    if inbox is not None:
        inbox_api = _InboxApi(inbox, control)
        app.router.add_get("/api/v1/inbox", inbox_api.list_items)
        app.router.add_get("/api/v1/inbox/{call_id}", inbox_api.get_item)
        app.router.add_post("/api/v1/inbox/{call_id}/handled", inbox_api.mark_handled)
        app.router.add_post("/api/v1/inbox/{call_id}/callback", inbox_api.call_back)
        app.router.add_get("/api/v1/calls/{call_id}/voicemail", inbox_api.voicemail)
        app.router.add_get("/api/v1/reports/daily", inbox_api.daily_report)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_api(
    http: HttpConfig, history: CallHistory, control: DaemonControl, inbox: InboxService | None = None
) -> web.AppRunner:
    """Listen on `http.host:http.port`; the caller stops it with `await runner.cleanup()`.

    Raises `ApiConfigError` without a token (or with a short one), and `OSError` if the address cannot
    be bound.
    """
    runner = web.AppRunner(build_app(history, control, http, inbox), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, http.host, http.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("api_listening", addresses=[str(address) for address in runner.addresses])
    return runner
