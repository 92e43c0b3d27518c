"""The missed-call inbox in the browser: sign-in, the inbox, a call's detail, reports.

Plain server-rendered HTML (Jinja2) with a little JavaScript for the live list and the buttons; every
asset ships in this package. The pages use `InboxService` (callkeeper.inbox) for all data and the
config for users, lines and password hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from http import HTTPStatus
from importlib import resources
from typing import Any, NoReturn, Protocol
from urllib.parse import quote, urlencode

import jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from callkeeper.api.requests import DIALER_REFUSALS
from callkeeper.api.server import CallRecords, calls_csv
from callkeeper.config.model import Config, User
from callkeeper.inbox.model import (
    MAX_INBOX_LIMIT,
    DailyReportRow,
    InboxAlreadyHandled,
    InboxError,
    InboxFilter,
    InboxItem,
    InboxState,
    NoVoicemail,
    VoicemailAudio,
    VoicemailGone,
)
from callkeeper.inbox.words import reason_in_words
from callkeeper.live import DialerRejected
from callkeeper.records import CallRecord, Outcome, Reason, now_utc
from callkeeper.web.live import LiveVersion
from callkeeper.web.passwords import decoy_hash, verify_password
from callkeeper.web.sessions import LoginBrake, Session, SessionSigner, password_fingerprint
from callkeeper.web.views import (
    OUTCOME_WORDS,
    call_row,
    day_totals,
    followup_view,
    handled_text,
    history_row,
    inbox_row,
    journey,
    report_chart,
    report_row,
    report_tiles,
)
from callkeeper.web.words import duration, phone

log = structlog.get_logger(__name__)

SESSION_COOKIE = "callkeeper_session"
LOGIN_COOKIE = "callkeeper_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
KEEPALIVE_SECONDS = 15.0
STATIC_MAX_AGE = 7 * 24 * 3600

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
COMPRESSED_TYPES = frozenset({"text/html", "text/css", "text/javascript", "text/csv"})
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
PUBLIC_PATHS = frozenset({"/login"})
PAGE_SIZE = 100
HISTORY_LIMIT = 20
MAX_NOTE = 500
MAX_CALL_ID = 256
CSV_PAGE = 1000
REPORT_DAYS = 14
MAX_REPORT_DAYS = 366
FILTER_OUTCOMES = ("missed", "abandoned", "ignored")
HIDDEN_REASONS = frozenset({Reason.ANSWERED, Reason.FAILURE, Reason.UNKNOWN_NUMBER})
FILTER_REASONS = frozenset(reason.value for reason in Reason if reason not in HIDDEN_REASONS)


def _reason_choices() -> list[tuple[str, str]]:
    """(reason, words) for the filter; reasons that read alike are told apart by their name."""
    words = {
        reason: reason_in_words(Outcome.MISSED, reason) for reason in Reason if reason not in HIDDEN_REASONS
    }
    alike = [text for text in words.values() if list(words.values()).count(text) > 1]
    return sorted(
        (
            (reason.value, f"{text} ({reason.value.replace('_', ' ')})" if text in alike else text)
            for reason, text in words.items()
        ),
        key=lambda choice: choice[1],
    )


REASON_CHOICES = _reason_choices()


def _static_files() -> dict[str, bytes]:
    folder = resources.files("callkeeper.web") / "static"
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.name[0] != "."}


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    session: Session
    csrf: str


SIGNED_IN = web.RequestKey("signed_in", SignedIn)


class InboxPages(Protocol):
    """What the pages use of `callkeeper.inbox.service.InboxService`."""

    async def list(self, inbox_filter: InboxFilter) -> Sequence[InboxItem]: ...

    async def item(self, call_id: str) -> InboxItem | None: ...

    async def mark_handled(self, call_id: str, by: str, note: str | None) -> InboxItem: ...

    async def call_back(self, call_id: str, user: str) -> str: ...

    async def voicemail_audio(self, call_id: str) -> VoicemailAudio: ...

    async def daily_report(
        self, lines: frozenset[str] | None, since: date, until: date
    ) -> Sequence[DailyReportRow]: ...

    async def history(self, caller: str, limit: int) -> Sequence[CallRecord]: ...

    async def version(self) -> int: ...


class PageError(Exception):
    """A request the page cannot carry out, said in words, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _forbid(reason: str) -> NoReturn:
    raise web.HTTPForbidden(text=reason)


def _is_fetch(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith(("application/json", "text/event-stream")) or (
        CSRF_HEADER in request.headers
    )


def _secure(request: web.Request) -> bool:
    """Served over TLS, here or by a proxy in front that says so.

    The header is not checked against a list of proxies: a false claim only makes the cookie stricter."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _local_target(target: str | None) -> str:
    """Where to go after signing in: only a path of this site, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class WebInbox:
    """The web pages, mounted into the daemon's HTTP application."""

    def __init__(
        self,
        pages: InboxPages,
        calls: CallRecords,
        config: Callable[[], Config],
        session_key: bytes,
        brake: LoginBrake | None = None,
    ) -> None:
        self.pages = pages
        self.calls = calls
        self._config = config
        self.signer = SessionSigner(session_key)
        self.brake = brake or LoginBrake()
        self.live = LiveVersion(pages.version)
        self.static = _static_files()
        self.static_version = hashlib.sha256(b"".join(self.static.values())).hexdigest()[:10]
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("callkeeper.web", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.globals["static"] = lambda name: f"/static/{name}?v={self.static_version}"

    # -- plumbing ---------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/login", self.login_form)
        router.add_post("/login", self.login)
        router.add_post("/logout", self.logout)
        router.add_get("/static/{name}", self.static_file)
        router.add_get("/", self.inbox)
        router.add_get("/inbox/rows", self.inbox_rows)
        router.add_get("/events", self.events)
        router.add_get("/calls/{call_id}", self.call_page)
        router.add_get("/calls/{call_id}/voicemail", self.voicemail)
        router.add_post("/calls/{call_id}/handled", self.handled)
        router.add_post("/calls/{call_id}/callback", self.call_back)
        router.add_get("/reports", self.reports)
        router.add_get("/reports/calls.csv", self.report_calls)
        app.on_shutdown.append(lambda _: self.live.close())

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(name).render(**context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Sign-in, CSRF and safe headers for every page; HTML error pages."""
        try:
            if request.path not in PUBLIC_PATHS and not request.path.startswith("/static/"):
                signed_in = self.signed_in(request)
                if signed_in is None:
                    if request.method == "GET" and not _is_fetch(request):
                        target = request.path_qs if request.path != "/" or request.query_string else ""
                        raise web.HTTPSeeOther(
                            "/login" + (f"?{urlencode({'next': target})}" if target else "")
                        )
                    raise web.HTTPUnauthorized(text="Sign in first.")
                if request.method not in ("GET", "HEAD"):
                    await self._check_csrf(request, signed_in)
                request[SIGNED_IN] = signed_in
            response = await handler(request)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = self._error_page(request, error.status, error.text or "")
        except (InboxError, PageError) as error:
            response = self._error_page(request, error.status, str(error))
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if isinstance(response, web.Response) and response.content_type in COMPRESSED_TYPES:
            # No BREACH: the session cookie is SameSite=Strict, so no other site can have a signed-in
            # page rendered with its own text in it.
            response.enable_compression()
        return response

    def _error_page(self, request: web.Request, status: int, message: str) -> web.Response:
        title = HTTPStatus(status).phrase
        message = message.removeprefix(f"{status}: {title}")
        if _is_fetch(request):
            return web.json_response({"error": message or title}, status=status)
        signed_in = request.get(SIGNED_IN)
        return self.render("error.html", status=status, title=title, message=message, me=signed_in, nav="")

    def signed_in(self, request: web.Request) -> SignedIn | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.signer.read(cookie) if cookie else None
        if session is None:
            return None
        user = self._config().users.get(session.user)
        password_hash = self._password_hash(user)
        if (
            user is None
            or password_hash is None
            or password_fingerprint(password_hash) != session.fingerprint
        ):
            return None
        return SignedIn(user, session, self.signer.csrf_token(session.session_id))

    async def _check_csrf(self, request: web.Request, signed_in: SignedIn) -> None:
        token = request.headers.get(CSRF_HEADER)
        if token is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            value = (await request.post()).get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if token is None or not self.signer.csrf_valid(signed_in.session.session_id, token):
            _forbid("This form is out of date or did not come from this page. Reload the page and try again.")

    @staticmethod
    def _password_hash(user: User | None) -> str | None:
        return None if user is None else user.web_password_hash

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self.static.get(name)
        suffix = name[name.rfind(".") :]
        if body is None or suffix not in STATIC_TYPES:
            raise web.HTTPNotFound(text="No such file.")
        cache = f"public, max-age={STATIC_MAX_AGE}, immutable" if request.query.get("v") else "no-cache"
        return web.Response(body=body, content_type=STATIC_TYPES[suffix], headers={"Cache-Control": cache})

    # -- signing in and out ---------------------------------------------------------------------

    def _login_page(
        self,
        request: web.Request,
        status: int = 200,
        error: str = "",
        username: str = "",
        target: str | None = None,
    ) -> web.Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        response = self.render(
            "login.html",
            status=status,
            error=error,
            username=username,
            next=_local_target(target or request.query.get("next")),
            csrf=self.signer.csrf_token(f"login:{nonce}"),
            signed_out="signed_out" in request.query,
            me=None,
            nav="",
        )
        response.set_cookie(
            LOGIN_COOKIE, nonce, httponly=True, samesite="Strict", secure=_secure(request), path="/login"
        )
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        if self.signed_in(request) is not None:
            raise web.HTTPSeeOther(_local_target(request.query.get("next")))
        return self._login_page(request)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        target = str(form.get("next", "")) or None
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not self.signer.csrf_valid(f"login:{nonce}", str(form.get(CSRF_FIELD, ""))):
            return self._login_page(
                request, 403, "The sign-in form had expired. Please try again.", username, target
            )
        address = request.remote or ""
        wait = self.brake.wait_seconds(username, address)
        if wait > 0:
            log.warning("web_sign_in_braked", user=username[:64], address=address)
            minutes = max(1, round(wait / 60))
            message = f"Too many wrong passwords. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
            return self._login_page(request, 429, message, username, target)
        user = self._config().users.get(username)
        password_hash = self._password_hash(user)
        # Counted as wrong until it proves right, so attempts sent all at once meet the brake too.
        self.brake.failed(username, address)
        matches = await asyncio.to_thread(verify_password, password, password_hash or decoy_hash())
        if user is None or password_hash is None or not matches:
            log.info("web_sign_in_failed", user=username[:64], address=address)
            return self._login_page(
                request, 401, "That user name and password do not match.", username, target
            )
        self.brake.succeeded(username, address)
        session, cookie = self.signer.issue(user.name, password_hash)
        log.info("web_signed_in", user=user.name, address=address)
        response = web.HTTPSeeOther(_local_target(target))
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(session.expires_at - time.time()),
            httponly=True,
            samesite="Strict",
            secure=_secure(request),
            path="/",
        )
        response.del_cookie(LOGIN_COOKIE, path="/login")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        signed_in = request[SIGNED_IN]
        log.info("web_signed_out", user=signed_in.user.name)
        response = web.HTTPSeeOther("/login?signed_out=1")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    # -- the inbox -------------------------------------------------------------------------------

    def visible_lines(self, user: User) -> list[str]:
        lines = list(self._config().lines)
        return lines if user.inbox_lines is None else [line for line in lines if line in user.inbox_lines]

    def zone(self, line: str | None) -> tzinfo:
        found = self._config().lines.get(line or "")
        return found.timezone if found is not None else UTC

    def _inbox_query(self, request: web.Request, signed_in: SignedIn) -> tuple[InboxFilter, dict[str, Any]]:
        query = request.query
        lines = self.visible_lines(signed_in.user)
        line = query.get("line") or None
        if line is not None and line not in lines:
            raise web.HTTPNotFound(text="There is no such line, or it is not in your inbox.")
        state = query.get("state", "open")
        if state not in ("open", "handled"):
            raise web.HTTPBadRequest(text="Show open or handled calls.")
        outcome = query.get("outcome") or None
        if outcome is not None and outcome not in FILTER_OUTCOMES:
            raise web.HTTPBadRequest(text="Unknown outcome.")
        reason = query.get("reason") or None
        if reason is not None and reason not in FILTER_REASONS:
            raise web.HTTPBadRequest(text="Unknown reason.")
        number = "".join(char for char in query.get("number", "") if char.isdigit() or char == "+")[:20]
        show_hidden = query.get("all") == "1"
        limit = _int_param(query.get("limit"), PAGE_SIZE, MAX_INBOX_LIMIT)
        inbox_filter = InboxFilter(
            state=InboxState(state),
            lines=frozenset([line] if line else lines),
            outcome=Outcome(outcome) if outcome else None,
            reason=Reason(reason) if reason else None,
            since=parse_day(query.get("from")),
            until=parse_day(query.get("to")),
            number=number or None,
            show_short_abandons=show_hidden,
            show_ignored=show_hidden,
            limit=limit + 1,
        )
        shown = {
            "state": state,
            "line": line or "",
            "outcome": outcome or "",
            "reason": reason or "",
            "since": query.get("from", ""),
            "until": query.get("to", ""),
            "number": number,
            "show_hidden": show_hidden,
            "limit": limit,
        }
        return inbox_filter, shown

    async def _inbox_context(self, request: web.Request) -> dict[str, Any]:
        signed_in = request[SIGNED_IN]
        inbox_filter, shown = self._inbox_query(request, signed_in)
        # Read before the items: a change between the two makes the page fetch its rows once more.
        version = await self.live.current()
        items = await self.pages.list(inbox_filter)
        limit = shown["limit"]
        now = now_utc()
        rows = [inbox_row(item, self.zone(item.line), now) for item in items[:limit]]
        params = {
            "number": shown["number"],
            "state": "" if shown["state"] == "open" else shown["state"],
            "line": shown["line"],
            "outcome": shown["outcome"],
            "reason": shown["reason"],
            "from": shown["since"],
            "to": shown["until"],
            "all": "1" if shown["show_hidden"] else "",
        }
        filtered = any(params.values())
        more_filtered = any(params[key] for key in ("outcome", "reason", "from", "to", "all"))
        open_calls = shown["state"] == "open"
        count = f"{limit}+" if len(items) > limit else str(len(rows))
        noun = "call" if count == "1" else "calls"
        if open_calls:
            summary = f"{count} {noun} to call back" if rows else ""
        else:
            summary = f"{count} handled {noun}" if rows else ""
        heading = "Missed calls" if open_calls else "Handled calls"
        return {
            "me": signed_in,
            "nav": "inbox",
            "version": version,
            "title": f"({count}) {heading}" if rows and open_calls else heading,
            "heading": heading,
            "summary": summary,
            "rows": rows,
            "query": shown,
            "filtered": filtered,
            "more_filtered": more_filtered,
            "qs": query_string(**params, limit=limit if limit != PAGE_SIZE else None),
            "more_qs": query_string(**params, limit=limit + PAGE_SIZE) if len(items) > limit else "",
            "lines": self.visible_lines(signed_in.user),
            "outcomes": [(value, OUTCOME_WORDS[value]) for value in FILTER_OUTCOMES],
            "reasons": REASON_CHOICES,
        }

    async def inbox(self, request: web.Request) -> web.Response:
        return self.render("inbox.html", **await self._inbox_context(request))

    async def inbox_rows(self, request: web.Request) -> web.Response:
        return self.render("_rows.html", **await self._inbox_context(request))

    async def _visible_item(self, request: web.Request) -> InboxItem:
        signed_in = request[SIGNED_IN]
        item = await self.pages.item(request.match_info["call_id"][:MAX_CALL_ID])
        if item is None or item.line not in self.visible_lines(signed_in.user):
            raise web.HTTPNotFound(text="This call is not in your inbox.")
        return item

    async def _visible_call(self, request: web.Request) -> tuple[CallRecord | None, InboxItem | None]:
        """The call of the URL and its inbox item (if it has one), when the user may see its line."""
        call_id = request.match_info["call_id"][:MAX_CALL_ID]
        item = await self.pages.item(call_id)
        record = await self.calls.get_call(call_id)
        line = item.line if item is not None else record.line if record is not None else None
        if line is None or line not in self.visible_lines(request[SIGNED_IN].user):
            raise web.HTTPNotFound(text="This call is not in your inbox.")
        return record, item

    async def call_page(self, request: web.Request) -> web.Response:
        """The call of the URL (its journey, texts and webhooks) with its item's state and buttons."""
        signed_in = request[SIGNED_IN]
        version = await self.live.current()
        record, item = await self._visible_call(request)
        line = item.line if item is not None else record.line if record is not None else None
        zone, now = self.zone(line), now_utc()
        if item is not None:
            head = inbox_row(item, zone, now)
            number = item.caller
            message = (item.voicemail.call_id, item.voicemail.seconds) if item.voicemail else None
        else:
            assert record is not None
            head = call_row(record, record_reason_text(record), zone, now)
            number = head["number"]
            left = record.voicemail if record.voicemail is not None and record.voicemail.left else None
            message = (record.id, left.seconds) if left else None
        earlier = await self.pages.history(number, HISTORY_LIMIT)
        return self.render(
            "call.html",
            me=signed_in,
            nav="inbox",
            version=version,
            item=head,
            journey=journey(record, zone) if record else [],
            voicemail={"call_id": message[0], "seconds": duration(message[1])} if message else None,
            followups=[followup_view(f, zone, now) for f in (record.followups if record else ())],
            history=[
                history_row(call, request.match_info["call_id"], zone, now, record_reason_text(call))
                for call in earlier
                if call.line is None or call.line in self.visible_lines(signed_in.user)
            ],
        )

    async def voicemail(self, request: web.Request) -> web.StreamResponse:
        await self._visible_call(request)
        try:
            audio = await self.pages.voicemail_audio(request.match_info["call_id"])
        except VoicemailGone:
            raise web.HTTPGone(text="This message was deleted meanwhile.") from None
        except NoVoicemail:
            raise web.HTTPNotFound(text="The caller left no message.") from None
        return web.FileResponse(audio.path, headers={"Content-Type": audio.content_type})

    def _done(self, request: web.Request, message: str, status: int = 200, **extra: Any) -> web.Response:
        if _is_fetch(request):
            return web.json_response({"message": message, **extra}, status=status)
        raise web.HTTPSeeOther(f"/calls/{quote(request.match_info['call_id'])}")

    async def handled(self, request: web.Request) -> web.Response:
        signed_in = request[SIGNED_IN]
        item = await self._visible_item(request)
        note = str((await request.post()).get("note", "")).strip()[:MAX_NOTE] or None
        try:
            await self.pages.mark_handled(item.call_id, signed_in.user.name, note)
        except InboxAlreadyHandled as already:
            return self._done(
                request, f"Already handled {handled_text(already.item, self.zone(item.line), now_utc())}."
            )
        log.info("inbox_item_handled_on_web", call_id=item.call_id, user=signed_in.user.name)
        return self._done(request, f"{phone(item.caller)} is handled.")

    async def call_back(self, request: web.Request) -> web.Response:
        signed_in = request[SIGNED_IN]
        item = await self._visible_item(request)
        try:
            call_id = await self.pages.call_back(item.call_id, signed_in.user.name)
        except DialerRejected as rejected:
            raise PageError(
                DIALER_REFUSALS[rejected.why], f"callkeeper cannot call back now: {rejected}."
            ) from None
        log.info("inbox_callback_on_web", call_id=item.call_id, callback=call_id, user=signed_in.user.name)
        return self._done(
            request,
            f"Ringing your phone now. When you answer, callkeeper calls {phone(item.caller)}.",
            status=202,
            call_id=call_id,
        )

    # -- reports ---------------------------------------------------------------------------------

    def _report_query(self, request: web.Request) -> tuple[list[str], date, date, dict[str, str]]:
        signed_in = request[SIGNED_IN]
        lines = self.visible_lines(signed_in.user)
        line = request.query.get("line") or None
        if line is not None and line not in lines:
            raise web.HTTPNotFound(text="There is no such line, or it is not in your reports.")
        today = now_utc().date()
        until = parse_day(request.query.get("to")) or today
        since = parse_day(request.query.get("from")) or until - timedelta(days=REPORT_DAYS - 1)
        if since > until or (until - since).days >= MAX_REPORT_DAYS:
            raise web.HTTPBadRequest(
                text=f"Choose a start before the end, at most {MAX_REPORT_DAYS} days apart."
            )
        shown = {"line": line or "", "since": since.isoformat(), "until": until.isoformat()}
        return ([line] if line else lines), since, until, shown

    async def reports(self, request: web.Request) -> web.Response:
        signed_in = request[SIGNED_IN]
        lines, since, until, shown = self._report_query(request)
        rows = await self.pages.daily_report(frozenset(lines), since, until)
        return self.render(
            "reports.html",
            me=signed_in,
            nav="reports",
            query=shown,
            qs=query_string(line=shown["line"], **{"from": shown["since"], "to": shown["until"]}),
            lines=self.visible_lines(signed_in.user),
            chart=report_chart(day_totals(rows, since, until)),
            tiles=report_tiles(rows),
            rows=[report_row(row) for row in sorted(rows, key=lambda row: (row.day, row.line), reverse=True)],
        )

    async def report_calls(self, request: web.Request) -> web.StreamResponse:
        """The calls behind the report as CSV, oldest last, read and sent a page at a time."""
        lines, since, until, _ = self._report_query(request)
        name = f"callkeeper-calls-{since}-{until}.csv"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        response.enable_compression()
        await response.prepare(request)
        # Local days reach at most 14 hours either side of UTC's.
        earliest = datetime.combine(since - timedelta(days=1), datetime.min.time(), UTC)
        before = datetime.combine(until + timedelta(days=2), datetime.min.time(), UTC)
        header = True
        sent_at_boundary: set[str] = set()
        while True:
            page = await self.calls.list_calls(
                limit=CSV_PAGE,
                since=earliest,
                until=before,
                line=lines[0] if len(lines) == 1 else None,
                outcome=None,
            )
            fresh = [call for call in page if call.id not in sent_at_boundary]
            if not fresh:
                break
            text = calls_csv(
                [
                    call
                    for call in fresh
                    if call.line in lines
                    and since <= call.started_at.astimezone(self.zone(call.line)).date() <= until
                ]
            )
            await response.write((text if header else text.split("\r\n", 1)[1]).encode())
            header = False
            # The next page starts at the oldest call's moment again: calls that share it are not lost.
            oldest = fresh[-1].started_at
            sent_at_boundary = {call.id for call in page if call.started_at == oldest}
            before = oldest + timedelta(microseconds=1)
            if len(page) < CSV_PAGE:
                break
        await response.write_eof()
        return response

    # -- live updates ---------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: `version` whenever the inbox changed; the page then reloads its rows."""
        signed_in = request[SIGNED_IN]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        version = await self.live.current()
        await response.write(f"retry: 1000\nevent: version\ndata: {version}\n\n".encode())
        with contextlib.suppress(ConnectionResetError):
            while signed_in.session.expires_at > time.time():
                changed = await self.live.wait_change(version, KEEPALIVE_SECONDS)
                if self.live.closed:
                    break
                if changed != version:
                    version = changed
                    await response.write(f"event: version\ndata: {version}\n\n".encode())
                else:
                    await response.write(b": still here\n\n")
        return response


def _int_param(text: str | None, default: int, highest: int) -> int:
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= highest:
        raise web.HTTPBadRequest(text=f"A number from 1 to {highest}.")
    return int(text)


def record_reason_text(record: CallRecord) -> str:
    if record.outcome is None or record.reason is None:
        return "In progress"
    return reason_in_words(record.outcome, record.reason, short=record.short)


def query_string(**params: Any) -> str:
    return urlencode({key: value for key, value in params.items() if value not in (None, "", False)})


def parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{text[:20]!r} is not a date like 2026-12-04.") from None
