"""The missed-call inbox's JSON routes, its voicemail and the daily report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

import structlog
from aiohttp import web

from callkeeper.api.openapi import OUTCOMES
from callkeeper.api.requests import (
    DIALER_REFUSALS,
    FLAGS,
    call_id_param,
    choice_param,
    date_param,
    fail,
    limit_param,
    line_param,
    name_field,
    object_body,
)
from callkeeper.inbox.model import DEFAULT_INBOX_LIMIT, MAX_INBOX_LIMIT, InboxError, InboxFilter, InboxState
from callkeeper.inbox.service import InboxService
from callkeeper.live import DialerRejected
from callkeeper.records import Outcome, Reason, now_utc

log = structlog.get_logger(__name__)


class KnownLines(Protocol):
    def line_names(self) -> Sequence[str]: ...


HANDLED_FIELDS = frozenset({"by", "note"})
CALLBACK_FIELDS = frozenset({"user"})
REPORT_DAYS_DEFAULT = 7


class InboxApi:
    """The missed-call inbox, its voicemail and the daily report."""

    def __init__(self, inbox: InboxService, control: KnownLines) -> None:
        self.inbox = inbox
        self.control = control

    async def list_items(self, request: web.Request) -> web.Response:
        params = request.query
        outcome = choice_param(params, "outcome", OUTCOMES)
        reason = choice_param(params, "reason", [r.value for r in Reason])
        number = params.get("number")
        if number is not None and not re.fullmatch(r"[0-9+*#]{1,32}", number):
            fail(400, "invalid number", "1 to 32 of 0-9 + * #")
        where = InboxFilter(
            state=InboxState(choice_param(params, "state", [s.value for s in InboxState]) or "open"),
            lines=line_param(params, self.control.line_names()),
            outcome=Outcome(outcome) if outcome else None,
            reason=Reason(reason) if reason else None,
            since=date_param(params, "from"),
            until=date_param(params, "to"),
            number=number,
            show_short_abandons=FLAGS[choice_param(params, "show_short_abandons", list(FLAGS)) or "false"],
            show_ignored=FLAGS[choice_param(params, "show_ignored", list(FLAGS)) or "false"],
            limit=limit_param(params, DEFAULT_INBOX_LIMIT, MAX_INBOX_LIMIT),
        )
        items = await self.inbox.list(where)
        return web.json_response({"items": [item.to_json() for item in items]})

    async def get_item(self, request: web.Request) -> web.Response:
        call_id = call_id_param(request)
        item = await self.inbox.item(call_id)
        if item is None:
            fail(404, "no inbox item has this call", {"call_id": call_id})
        return web.json_response(item.to_json())

    async def mark_handled(self, request: web.Request) -> web.Response:
        call_id = call_id_param(request)
        body = await object_body(request, HANDLED_FIELDS)
        by = name_field(body, "by")
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            fail(422, "invalid note", "a text or null")
        try:
            item = await self.inbox.mark_handled(call_id, by, note)
        except InboxError as error:
            fail(error.status, str(error))
        log.info("inbox_item_handled", call_id=call_id, by=by)
        return web.json_response(item.to_json())

    async def call_back(self, request: web.Request) -> web.Response:
        call_id = call_id_param(request)
        user = name_field(await object_body(request, CALLBACK_FIELDS), "user")
        try:
            callback_id = await self.inbox.call_back(call_id, user)
        except InboxError as error:
            fail(error.status, str(error))
        except DialerRejected as rejected:
            fail(DIALER_REFUSALS[rejected.why], str(rejected))
        log.info("inbox_callback", call_id=call_id, user=user, callback_id=callback_id)
        return web.json_response({"call_id": callback_id}, status=202)

    async def voicemail(self, request: web.Request) -> web.StreamResponse:
        call_id = call_id_param(request)
        try:
            audio = await self.inbox.voicemail_audio(call_id)
        except InboxError as error:
            fail(error.status, str(error))
        return web.FileResponse(audio.path, headers={"Content-Type": audio.content_type})

    async def daily_report(self, request: web.Request) -> web.Response:
        params = request.query
        lines = line_param(params, self.control.line_names())
        until = date_param(params, "to") or now_utc().date()
        since = date_param(params, "from") or until - timedelta(days=REPORT_DAYS_DEFAULT - 1)
        try:
            rows = await self.inbox.daily_report(lines, since, until)
        except InboxError as error:
            fail(error.status, str(error))
        return web.json_response({"rows": [row.to_json() for row in rows]})
