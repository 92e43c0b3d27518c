"""ARI REST requests over the event websocket (Asterisk 20.14, 21.9, 22.4 and later): one
`RESTRequest` text frame per request, the answer a `RESTResponse` frame among the events.

Asterisk reads the socket on one thread and runs each request to the end before it reads the
next one (res/ari/ari_websockets.c: `while ((msg = session_read(...))) ari_websocket_process_request(...)`).
A request that waits for a channel's own thread therefore holds up every request sent after it,
whatever call they belong to: `AriRestClient` sends those over HTTP, and a socket whose oldest
request is overdue takes no new ones until it has answered."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import structlog

from callkeeper.ari.errors import (
    TRANSPORT_ERRORS,
    AriError,
    AriUnavailable,
    error_from_exception,
    error_from_response,
)

log = structlog.get_logger(__name__)

# Normal answers take a millisecond or so; a socket this late is stuck behind a slow request.
STALL_SECONDS: Final = 0.25
PROBE_URI: Final = "asterisk/ping"
RESPONSE_TYPE: Final = "RESTResponse"  # an app's event filter must let these through

Query = Mapping[str, str]
Send = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str | None
    body: str


def encode_request(
    request_id: str, method: str, path: str, query: Query | None, body: Mapping[str, Any] | None
) -> str:
    """`path` as for HTTP below /ari (`/channels/x/play`); Asterisk wants it without the slash."""
    message: dict[str, Any] = {
        "type": "RESTRequest",
        "request_id": request_id,
        "method": method,
        "uri": path.lstrip("/"),
    }
    if query:
        message["query_strings"] = [{"name": name, "value": value} for name, value in query.items()]
    if body is not None:
        message["content_type"] = "application/json"
        message["message_body"] = orjson.dumps(body).decode()
    return orjson.dumps(message).decode()


def decode_reply(message: Mapping[str, Any]) -> tuple[str, Reply] | None:
    """The request id and reply of a `RESTResponse` frame; None when it is not one of ours."""
    request_id = message.get("request_id")
    status = message.get("status_code")
    if not isinstance(request_id, str) or not isinstance(status, int):
        return None
    content_type = message.get("content_type")
    body = message.get("message_body")
    return request_id, Reply(
        status,
        content_type if isinstance(content_type, str) else None,
        body if isinstance(body, str) else "",
    )


@dataclass(slots=True)
class _Pending:
    method: str
    path: str
    sent_at: float
    future: asyncio.Future[Reply] | None  # None once the caller stopped waiting


class PendingRequests:
    """The requests of one socket not answered yet, oldest first (Asterisk answers in order).
    A request whose caller gave up (timeout, cancel) stays until its answer comes: until then
    the socket is still busy with it."""

    def __init__(self) -> None:
        self._entries: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def open(self, request_id: str, method: str, path: str, now: float) -> asyncio.Future[Reply]:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._entries[request_id] = _Pending(method, path, now, future)
        return future

    def settle(self, request_id: str, reply: Reply) -> bool:
        entry = self._entries.pop(request_id, None)
        if entry is None:
            return False
        if entry.future is not None and not entry.future.done():
            entry.future.set_result(reply)
        return True

    def abandon(self, request_id: str) -> None:
        entry = self._entries.get(request_id)
        if entry is not None:
            entry.future = None

    def forget(self, request_id: str) -> None:
        self._entries.pop(request_id, None)

    def fail_all(self, error: Callable[[str, str], AriError]) -> None:
        entries, self._entries = self._entries, {}
        for entry in entries.values():
            if entry.future is not None and not entry.future.done():
                entry.future.set_exception(error(entry.method, entry.path))

    def oldest_age(self, now: float) -> float:
        oldest = next(iter(self._entries.values()), None)
        return 0.0 if oldest is None else now - oldest.sent_at


class EventSocketRequests:
    """The REST lane of the current event websocket. `AriConnection` attaches each socket once
    it is READY and detaches it when it closes; `AriRestClient` sends over it while `usable`.
    Asterisk versions without REST over websocket ignore our frames: the probe sent on attach
    then never gets an answer, and requests keep going over HTTP."""

    def __init__(self, request_timeout_seconds: float, stall_seconds: float = STALL_SECONDS) -> None:
        self._request_timeout = request_timeout_seconds
        self._stall_seconds = stall_seconds
        self._send: Send | None = None
        self._pending = PendingRequests()
        self._ids = itertools.count(1)
        self._probe_id: str | None = None
        self._confirmed = False
        self._stalled = False
        self.sent = 0

    @property
    def usable(self) -> bool:
        if not self._confirmed:
            return False
        age = self._pending.oldest_age(time.monotonic())
        stalled = age > self._stall_seconds
        if stalled is not self._stalled:
            self._stalled = stalled
            if stalled:
                log.warning(
                    "ari_websocket_requests_stalled", oldest_seconds=round(age, 2), waiting=len(self._pending)
                )
            else:
                log.info("ari_websocket_requests_flowing")
        return not stalled

    async def attach(self, send: Send) -> None:
        self.detach()
        self._send = send
        self._probe_id = f"probe-{next(self._ids)}"
        await send(encode_request(self._probe_id, "GET", PROBE_URI, None, None))

    def detach(self) -> None:
        self._send = None
        self._probe_id = None
        self._confirmed = False
        self._stalled = False
        pending, self._pending = self._pending, PendingRequests()
        pending.fail_all(
            lambda method, path: AriUnavailable(
                None, method, path, "the event socket closed before Asterisk answered"
            )
        )

    def on_response(self, message: Mapping[str, Any]) -> None:
        decoded = decode_reply(message)
        if decoded is None:
            log.warning("ari_websocket_response_malformed")
            return
        request_id, reply = decoded
        if request_id == self._probe_id:
            self._probe_id = None
            self._confirmed = reply.status == 200
            log.info("ari_websocket_requests", enabled=self._confirmed)
        elif not self._pending.settle(request_id, reply):
            log.debug("ari_websocket_response_unmatched", request_id=request_id)

    async def request(
        self, method: str, path: str, query: Query | None, body: Mapping[str, Any] | None
    ) -> Any:
        """Like HTTP: the decoded JSON answer, or one of the `errors` types. Only while `usable`."""
        send, pending = self._send, self._pending
        if send is None:
            raise AriUnavailable(None, method, path, "the event socket is not connected")
        request_id = str(next(self._ids))
        future = pending.open(request_id, method, path, time.monotonic())
        sent = False
        try:
            async with asyncio.timeout(self._request_timeout):
                await send(encode_request(request_id, method, path, query, body))
                sent = True
                self.sent += 1
                reply = await future
        except TimeoutError:
            raise AriUnavailable(None, method, path, "timed out") from None
        except TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, method, path) from exc
        finally:
            if sent:
                pending.abandon(request_id)  # no-op once answered
            else:
                pending.forget(request_id)
        if reply.status >= 300:
            raise error_from_response(reply.status, method, path, reply.body, reply.content_type)
        return orjson.loads(reply.body) if reply.body else None
