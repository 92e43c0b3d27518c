"""The HTTP API: call history, presence, line overrides, queues, text opt-outs, health and metrics.

It sees the rest of the daemon only through `CallHistory` (the store) and `DaemonControl` (the live
daemon). Every bad input is answered with a JSON error and a 4xx status.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from callkeeper.api.inbound_sms import read_twilio, read_webhook
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
from callkeeper.live import DialerRejected, MetricsSnapshot, QueuedCaller, Refusal
from callkeeper.records import CallRecord, now_utc, utc_iso

log = structlog.get_logger(__name__)

STORE_CHECK_SECONDS = 2.0
OPT_OUT_SOURCE = "api"

DIALER_REFUSALS = {Refusal.UNKNOWN: 404, Refusal.NOT_DIALABLE: 422, Refusal.NOBODY_FREE: 409}

CALL_ID_RE = re.compile(CALL_ID)
E164_RE = re.compile(E164)
LIMIT_RE = re.compile(r"[0-9]{1,4}")


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
        self, *, limit: int, since: datetime | None, line: str | None, outcome: str | None
    ) -> list[CallRecord]:
        """Newest first by `started_at`; `since` (UTC) is inclusive."""

    async def get_call(self, call_id: str) -> CallRecord | None: ...

    async def healthy(self) -> bool: ...

    async def outbox_depth(self) -> dict[str, int]:
        """Items per status: pending, sending, sent, failed, held, cancelled."""

    async def set_opt_out(self, number: str, opted_out: bool, source: str, now: datetime) -> None: ...

    async def list_opt_outs(self) -> Sequence[OptOutEntry]:
        """Numbers currently opted out."""


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


CALLS_QUERY = ("limit", "since", "line", "outcome")
# The provider signs these requests itself: they carry no bearer token.
INBOUND_SMS_PATH = re.compile(r"/api/v1/sms/[^/]+/inbound")
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@web.middleware
async def _known_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown or repeated query parameters are refused, so a misspelt filter never silently widens a list."""
    if request.match_info.http_exception is not None:
        return await handler(request)
    resource = request.match_info.route.resource
    allowed = CALLS_QUERY if resource is not None and resource.canonical == "/api/v1/calls" else ()
    seen: set[str] = set()
    for key, _ in request.query.items():
        if key not in allowed:
            _fail(400, "unknown query parameter", {"parameter": key, "allowed": list(allowed)})
        if key in seen:
            _fail(400, "repeated query parameter", {"parameter": key})
        seen.add(key)
    return await handler(request)


def _parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().upper())
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        _fail(
            400,
            "invalid since",
            "an ISO 8601 date-time, e.g. 2024-05-01T08:00:00Z (naive means UTC; send '+' as %2B)",
        )


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


async def _dialer_body(request: web.Request) -> dict[str, str]:
    if request.content_type != "application/json":
        _fail(415, "unsupported media type", "send Content-Type: application/json")
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        _fail(400, "invalid JSON")
    if not isinstance(body, dict):
        _fail(422, "invalid body", "a JSON object")
    unknown = sorted(set(body) - DIALER_FIELDS)
    if unknown:
        _fail(422, "unknown fields", {"fields": unknown})
    if not all(isinstance(value, str) for value in body.values()):
        _fail(422, "invalid body", "every field is a string")
    if not isinstance(body.get("contact"), str) or not E164_RE.fullmatch(body["contact"]):
        _fail(422, "invalid contact", "an E.164 number")
    if not isinstance(body.get("line"), str) or not body["line"]:
        _fail(422, "invalid line", "a line name")
    if ("user" in body) == ("ring_group" in body):
        _fail(422, "invalid body", "exactly one of user and ring_group")
    return body


def _opt_out_json(entry: OptOutEntry) -> dict[str, Any]:
    return {"number": entry.number, "source": entry.source, "at": utc_iso(entry.at)}


class _Api:
    def __init__(self, history: CallHistory, control: DaemonControl) -> None:
        self.history = history
        self.control = control

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
        limit = DEFAULT_LIMIT
        if "limit" in params:
            if not LIMIT_RE.fullmatch(params["limit"]) or not 1 <= int(params["limit"]) <= MAX_LIMIT:
                _fail(400, "invalid limit", f"an integer from 1 to {MAX_LIMIT}")
            limit = int(params["limit"])
        since = _parse_since(params["since"]) if "since" in params else None
        line = params.get("line")
        if line is not None and not 1 <= len(line) <= MAX_NAME_LENGTH:
            _fail(400, "invalid line", f"a line name of 1 to {MAX_NAME_LENGTH} characters")
        outcome = params.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            _fail(400, "invalid outcome", {"allowed": list(OUTCOMES)})
        calls = await self.history.list_calls(limit=limit, since=since, line=line, outcome=outcome)
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
        """A reply to a follow-up text: STOP opts the sender out, START back in."""
        provider = request.match_info["provider"]
        found = self.control.inbound_sms_secret(provider)
        if found is None:
            _fail(404, "unknown provider")
        kind, secret = found
        raw = await request.read()
        if kind == "twilio":
            text = read_twilio(secret, str(request.url), raw, request.headers.get("X-Twilio-Signature", ""))
        else:
            text = read_webhook(secret, raw, request.headers.get("X-Callkeeper-Signature", ""))
        if text is None:
            _fail(403, "invalid signature or message")
        if text.opt_out is not None and E164_RE.fullmatch(text.sender):
            await self.history.set_opt_out(text.sender, text.opt_out, f"sms:{provider}", now_utc())
            log.info("opt_out_set_by_text", number=text.sender, opted_out=text.opt_out, provider=provider)
        if kind == "twilio":
            return web.Response(text=TWIML_EMPTY, content_type="text/xml")
        return web.json_response({"opted_out": text.opt_out})

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


def build_app(history: CallHistory, control: DaemonControl, token: Secret | None) -> web.Application:
    """The API application; with a token, every route but `/healthz` requires it as a bearer token."""
    middlewares: list[Middleware] = [_access_log, _json_errors]
    if token is not None:
        if not token.value:
            raise ApiConfigError("http.token is empty")
        middlewares.append(_bearer_auth(token))
    middlewares.append(_known_query)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    api = _Api(history, control)
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
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_api(http: HttpConfig, history: CallHistory, control: DaemonControl) -> web.AppRunner:
    """Listen on `http.host:http.port`; the caller stops it with `await runner.cleanup()`.

    Raises `ApiConfigError` for a non-loopback address without a token, and `OSError` if the address
    cannot be bound.
    """
    if http.token is None and not is_loopback(http.host):
        raise ApiConfigError(
            f"refusing to serve the HTTP API on {http.host!r} without http.token: "
            "set a token or listen on 127.0.0.1"
        )
    runner = web.AppRunner(build_app(history, control, http.token), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, http.host, http.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("api_listening", addresses=[str(address) for address in runner.addresses])
    return runner
