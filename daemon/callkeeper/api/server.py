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
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from callkeeper.api.inbound_sms import TIMESTAMP_HEADER, read_twilio, read_webhook
from callkeeper.api.inbox_routes import InboxApi
from callkeeper.api.metrics import CONTENT_TYPE, render_metrics
from callkeeper.api.openapi import (
    DEFAULT_LIMIT,
    LINE_MODES,
    MAX_BODY_BYTES,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    OUTCOMES,
    SETTABLE_PRESENCE,
    openapi_document,
)
from callkeeper.api.requests import (
    DIALER_REFUSALS,
    E164_RE,
    ApiError,
    call_id_param,
    dialer_body,
    error_response,
    fail,
    json_body,
    limit_param,
    name_param,
    number_param,
    parse_since,
)
from callkeeper.config.model import HttpConfig, Secret
from callkeeper.followups.providers import SIGNATURE_HEADER
from callkeeper.inbox.service import InboxService
from callkeeper.live import DialerRejected, MetricsSnapshot, QueuedCaller
from callkeeper.records import CallRecord, now_utc, utc_iso

log = structlog.get_logger(__name__)

STORE_CHECK_SECONDS = 2.0
MIN_TOKEN_LENGTH = 32
MAX_LOGGED_PATH = 200
OPT_OUT_SOURCE = "api"


class OptOutEntry(Protocol):
    """A number that asked not to receive follow-up texts (the store's `OptOut` is one)."""

    @property
    def number(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def at(self) -> datetime: ...


class CallRecords(Protocol):
    """The call records (what the web pages read of the store, too)."""

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


class CallHistory(CallRecords, Protocol):
    """What the API reads and writes in the store."""

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

    def set_presence(self, user: str, presence: str) -> None:
        """One of `openapi.SETTABLE_PRESENCE`."""

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
        return error_response(error.status, error.error, error.detail, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(error.status, error.reason.lower(), None, allow)
    except Exception:
        log.exception("api_handler_failed", method=request.method, path=request.path)
        return error_response(500, "internal error")


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
        return error_response(421, "unknown host", "the Host header names no address or name of this server")

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
            fail(400, "unknown query parameter", {"parameter": key, "allowed": list(allowed)})
        if key in seen:
            fail(400, "repeated query parameter", {"parameter": key})
        seen.add(key)
    return await handler(request)


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
            fail(400, "invalid format", {"allowed": list(CALL_FORMATS)})
        # A spreadsheet download takes as much as one request may.
        limit = limit_param(params, MAX_LIMIT if output == "csv" else DEFAULT_LIMIT, MAX_LIMIT)
        since = parse_since(params["since"]) if "since" in params else None
        until = parse_since(params["until"], "until") if "until" in params else None
        line = params.get("line")
        if line is not None and not 1 <= len(line) <= MAX_NAME_LENGTH:
            fail(400, "invalid line", f"a line name of 1 to {MAX_NAME_LENGTH} characters")
        outcome = params.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            fail(400, "invalid outcome", {"allowed": list(OUTCOMES)})
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
        call_id = call_id_param(request)
        record = await self.history.get_call(call_id)
        if record is None:
            fail(404, "unknown call", {"id": call_id})
        return web.json_response(record.to_json())

    def _user_json(self, name: str) -> dict[str, str]:
        return {"name": name, "presence": self.control.presence(name)}

    async def list_users(self, request: web.Request) -> web.Response:
        return web.json_response({"users": [self._user_json(name) for name in self.control.user_names()]})

    async def get_presence(self, request: web.Request) -> web.Response:
        name = name_param(request, "name", self.control.user_names(), "user")
        return web.json_response(self._user_json(name))

    async def put_presence(self, request: web.Request) -> web.Response:
        name = name_param(request, "name", self.control.user_names(), "user")
        presence = await json_body(request, "presence", SETTABLE_PRESENCE)
        self.control.set_presence(name, presence)
        log.info("presence_set_by_api", user=name, presence=presence)
        return web.json_response(self._user_json(name))

    def _line_json(self, name: str) -> dict[str, str]:
        return {"name": name, "override": self.control.line_override(name)}

    async def list_lines(self, request: web.Request) -> web.Response:
        return web.json_response({"lines": [self._line_json(name) for name in self.control.line_names()]})

    async def put_line_override(self, request: web.Request) -> web.Response:
        name = name_param(request, "name", self.control.line_names(), "line")
        mode = await json_body(request, "mode", LINE_MODES)
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
        body = await dialer_body(request)
        try:
            call_id = self.control.dial(
                body["contact"], body["line"], body.get("user"), body.get("ring_group")
            )
        except DialerRejected as rejected:
            fail(DIALER_REFUSALS[rejected.why], str(rejected))
        return web.json_response({"id": call_id}, status=202)

    async def inbound_sms(self, request: web.Request) -> web.Response:
        """A reply to a follow-up text: STOP opts the sender out, START back in. Each provider message
        is taken once: a replay is refused."""
        provider = request.match_info["provider"]
        found = self.control.inbound_sms_secret(provider)
        if found is None:
            fail(404, "unknown provider")
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
            fail(403, "invalid signature or message")
        # Remembered once applied: a store failure in between leaves the provider's retry welcome.
        if await self.history.inbound_message_seen(provider, text.message_id):
            log.warning("inbound_sms_refused", provider=provider, reason="replayed")
            fail(409, "message already received")
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
            fail(400, "invalid Host header")

    async def list_opt_outs(self, request: web.Request) -> web.Response:
        entries = await self.history.list_opt_outs()
        return web.json_response({"opt_outs": [_opt_out_json(entry) for entry in entries]})

    async def get_opt_out(self, request: web.Request) -> web.Response:
        number = number_param(request)
        return web.json_response(await self._opt_out_state(number))

    async def put_opt_out(self, request: web.Request) -> web.Response:
        return await self._set_opt_out(request, opted_out=True)

    async def delete_opt_out(self, request: web.Request) -> web.Response:
        return await self._set_opt_out(request, opted_out=False)

    async def _set_opt_out(self, request: web.Request, *, opted_out: bool) -> web.Response:
        number = number_param(request)
        await self.history.set_opt_out(number, opted_out, OPT_OUT_SOURCE, now_utc())
        log.info("opt_out_set_by_api", number=number, opted_out=opted_out)
        return web.json_response(await self._opt_out_state(number))

    async def _opt_out_state(self, number: str) -> dict[str, Any]:
        for entry in await self.history.list_opt_outs():
            if entry.number == number:
                return {"opted_out": True, **_opt_out_json(entry)}
        return {"number": number, "opted_out": False, "source": None, "at": None}


class WebPages(Protocol):
    """The web inbox (callkeeper.web): its own routes, signed in by session rather than bearer token."""

    def add_routes(self, app: web.Application) -> None: ...

    @property
    def middleware(self) -> Middleware: ...


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics")


def _api_only(middleware: Middleware) -> Middleware:
    @web.middleware
    async def api_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_api(request.path):
            return await middleware(request, handler)
        return await handler(request)

    return api_only


def _web_only(middleware: Middleware) -> Middleware:
    @web.middleware
    async def web_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_api(request.path):
            return await handler(request)
        return await middleware(request, handler)

    return web_only


def build_app(
    history: CallHistory,
    control: DaemonControl,
    http: HttpConfig,
    inbox: InboxService | None = None,
    pages: WebPages | None = None,
) -> web.Application:
    """The API application: every API route but `/healthz` requires `http.token` as a bearer token, and
    every request a `Host` header naming this server (`allowed_host`). Without `inbox` the inbox,
    voicemail and report routes are absent. With `pages`, the web inbox is served beside it (every
    other path), behind its own sign-in."""
    if http.token is None:
        raise ApiConfigError("http.token is required: the API is never served without a token")
    if len(http.token.value) < MIN_TOKEN_LENGTH:
        raise ApiConfigError(f"http.token must be at least {MIN_TOKEN_LENGTH} characters")
    middlewares: list[Middleware] = [
        _access_log,
        _api_only(_json_errors),
        _host_check(http),
        _api_only(_bearer_auth(http.token)),
        _api_only(_known_query),
    ]
    if pages is not None:
        middlewares.append(_web_only(pages.middleware))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    if pages is not None:
        pages.add_routes(app)
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
        inbox_api = InboxApi(inbox, control)
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
    http: HttpConfig,
    history: CallHistory,
    control: DaemonControl,
    inbox: InboxService | None = None,
    pages: WebPages | None = None,
) -> web.AppRunner:
    """Listen on `http.host:http.port`; the caller stops it with `await runner.cleanup()`.

    Raises `ApiConfigError` without a token (or with a short one), and `OSError` if the address cannot
    be bound.
    """
    runner = web.AppRunner(build_app(history, control, http, inbox, pages), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, http.host, http.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("api_listening", addresses=[str(address) for address in runner.addresses])
    return runner
