"""The ARI event stream: one websocket, reconnected forever with backoff, events handed over in
arrival order. States: DISCONNECTED -> CONNECTING -> READY, back to DISCONNECTED when the
socket drops; FATAL (credentials, app taken over) and CLOSED (close()) are final. While READY
the socket also carries the REST requests of the `rest` client it was given (wsrest.py)."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect

from callkeeper.ari.backoff import Backoff, ExponentialBackoff
from callkeeper.ari.errors import (
    TRANSPORT_ERRORS,
    AriAuthError,
    AriConflict,
    AriError,
    AriUnavailable,
    error_from_exception,
    is_retryable,
)
from callkeeper.ari.events import (
    ApplicationReplaced,
    AriEvent,
    AsteriskInfo,
    MalformedEvent,
    UnknownEvent,
    parse_event,
)
from callkeeper.ari.rest import AriRestClient, basic_auth_header
from callkeeper.ari.wsrest import RESPONSE_TYPE, EventSocketRequests
from callkeeper.config.model import AsteriskConfig

log = structlog.get_logger(__name__)

EVENTS_PATH = "/events"


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    READY = "ready"
    FATAL = "fatal"
    CLOSED = "closed"


class _WebsocketLog(logging.LoggerAdapter[logging.Logger]):
    """websockets logs every handshake header (Authorization too) and every frame at DEBUG;
    this logger never enables DEBUG, whatever level the operator sets."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WEBSOCKET_LOG = _WebsocketLog(logging.getLogger("callkeeper.ari.websocket"))


class AriConnection:
    """`run()` connects and keeps reconnecting until `close()`; it raises AriAuthError (or
    another non-retryable AriError) when retrying cannot help. Once it has been connected, it
    retries at least every `reconnect_cap_seconds`, so calls are picked up soon after Asterisk
    is back.

    After every (re)connect `on_ready` is awaited before any event of the new socket is handed
    to `on_event`: Asterisk does not queue events for an absent app, so that is where the
    owner reconciles. Events arriving meanwhile wait, in order.

    Pass the daemon's `rest` client to have its requests sent over the socket while READY
    (and over HTTP before that, during on_ready too); requests waiting for an answer when the
    socket drops fail with AriUnavailable."""

    def __init__(
        self,
        config: AsteriskConfig,
        *,
        on_event: Callable[[AriEvent], None],
        on_ready: Callable[[], Awaitable[None]] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        session: aiohttp.ClientSession | None = None,
        rest: AriRestClient | None = None,
        backoff: Backoff | None = None,
        stable_after_seconds: float = 10.0,
        ping_interval_seconds: float = 20.0,
        reconnect_cap_seconds: float = 1.0,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._on_ready = on_ready
        self._on_disconnected = on_disconnected
        self._rest = rest or AriRestClient(config, session)
        self._owns_rest = rest is None
        self._requests = EventSocketRequests(config.request_timeout_seconds)
        self._rest.use_event_socket(self._requests)
        self._backoff = backoff or ExponentialBackoff()
        self._stable_after = stable_after_seconds
        self._ping_interval = ping_interval_seconds
        self._reconnect_cap = reconnect_cap_seconds
        base = config.url.rstrip("/").replace("http", "ws", 1) + "/ari" + EVENTS_PATH
        self._events_url = base + "?" + urlencode({"app": config.app, "subscribeAll": "false"})
        self._headers = basic_auth_header(config)
        self._state = ConnectionState.DISCONNECTED
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._ever_ready = False
        self._down_since: float | None = None
        self._failures = 0
        self._unknown_types: set[str] = set()
        self.reconnects = 0
        self.last_error: AriError | None = None
        self.asterisk: AsteriskInfo | None = None

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is ConnectionState.READY

    @property
    def requests(self) -> EventSocketRequests:
        """The REST lane of the socket: whether it takes requests now, how many it carried."""
        return self._requests

    async def wait_ready(self) -> None:
        """Returns once READY (on_ready done); raises the fatal error, or AriUnavailable if
        the connection was closed. Bound it with `asyncio.timeout()`."""
        while self._state is not ConnectionState.READY:
            if self._state is ConnectionState.FATAL:
                raise self.last_error or AriUnavailable(None, "GET", EVENTS_PATH, "connection failed")
            if self._state is ConnectionState.CLOSED:
                raise AriUnavailable(None, "GET", EVENTS_PATH, "connection closed")
            await self._changed.wait()

    async def run(self) -> None:
        if self._state is ConnectionState.CLOSED:
            return
        if self._task is not None:
            raise RuntimeError("AriConnection.run() runs only once")
        self._task = asyncio.create_task(self._connect_forever(), name="ari-connection")
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._closing or (current is not None and current.cancelling()):
                raise
        finally:
            if self._state is not ConnectionState.FATAL:
                self._set_state(ConnectionState.CLOSED)
            if self._owns_rest:
                await self._rest.close()

    async def close(self) -> None:
        """Stops reconnecting, closes the socket; `run()` then returns normally."""
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])
        if self._state is not ConnectionState.FATAL:
            self._set_state(ConnectionState.CLOSED)

    # ------------------------------------------------------------------ the loop

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            self._set_state(ConnectionState.CONNECTING)
            ready_at: float | None = None
            try:
                async with await self._open() as websocket:
                    if self._on_ready is not None:
                        await self._on_ready()
                    ready_at = time.monotonic()
                    self._became_ready()
                    try:
                        await self._requests.attach(websocket.send)
                        await self._deliver(websocket)
                    finally:
                        self._requests.detach()
                error: AriError = AriUnavailable(None, "GET", EVENTS_PATH, "Asterisk closed the event socket")
            except AriError as exc:
                error = exc
            except TRANSPORT_ERRORS as exc:
                error = error_from_exception(exc, "GET", EVENTS_PATH)
            self.last_error = error
            was_ready = self._state is ConnectionState.READY
            if not is_retryable(error):
                self._set_state(ConnectionState.FATAL)
                log.error("ari_connection_fatal", error=str(error))
                raise error
            self._set_state(ConnectionState.DISCONNECTED)
            if ready_at is not None and time.monotonic() - ready_at >= self._stable_after:
                attempt = 0
                self._backoff.reset()
            delay = self._backoff.next_delay(attempt)
            if self._ever_ready:
                # Calls wait in Asterisk for us: once connected, never back off longer than this.
                delay = min(delay, self._reconnect_cap)
            attempt += 1
            self._note_failure(error, delay, was_ready)
            await asyncio.sleep(delay)

    async def _open(self) -> ClientConnection:
        try:
            return await self._handshake()
        except AriAuthError as exc:
            raise AriAuthError(
                exc.status,
                exc.method,
                exc.path,
                f"ARI rejected user {self._config.username!r}: check asterisk.username/password and ari.conf",
            ) from exc

    async def _handshake(self) -> ClientConnection:
        # The REST probe first: it tells "Asterisk still loading" (404) and "wrong password"
        # (401) apart, and learns the version for the logs.
        self.asterisk = await self._rest.asterisk_info()
        try:
            return await connect(
                self._events_url,
                additional_headers=self._headers,
                open_timeout=self._config.connect_timeout_seconds,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_interval,
                close_timeout=2.0,
                # Unbounded: the socket keeps being read while on_ready runs, so Asterisk never
                # sees a stalled reader (it drops clients whose writes time out).
                max_queue=None,
                proxy=None,
                # Asterisk offers no compression; a proxy that did would cost both ends CPU per frame.
                compression=None,
                logger=_WEBSOCKET_LOG,
            )
        except TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, "GET", EVENTS_PATH) from exc

    async def _deliver(self, websocket: ClientConnection) -> None:
        on_event = self._on_event
        async for message in websocket:
            try:
                data = orjson.loads(message)
                if type(data) is dict and data.get("type") == RESPONSE_TYPE:
                    self._requests.on_response(data)
                    continue
                event = parse_event(data)
            except MalformedEvent as exc:
                log.warning("ari_event_malformed", type=exc.event_type, reason=exc.reason)
                continue
            except ValueError:
                log.warning("ari_frame_not_json", size=len(message))
                continue
            if type(event) is UnknownEvent and event.type not in self._unknown_types:
                self._unknown_types.add(event.type)
                log.debug("ari_event_unknown", type=event.type)
            try:
                on_event(event)
            except Exception:
                # One call's handler bug must not stop the events of every other call.
                log.exception("ari_event_handler_failed", type=event.type)
            if type(event) is ApplicationReplaced:
                # Reconnecting would only take the app back and start a tug of war.
                raise AriConflict(
                    None,
                    "GET",
                    EVENTS_PATH,
                    f"another ARI client connected as app {self._config.app!r}; this one gets no events",
                )

    # ------------------------------------------------------------------ state and logs

    def _became_ready(self) -> None:
        if self._ever_ready:
            self.reconnects += 1
        self._ever_ready = True
        if self._down_since is None:
            log.info("ari_connected", app=self._config.app, asterisk=self._version())
        else:
            log.info(
                "ari_connection_restored",
                app=self._config.app,
                asterisk=self._version(),
                down_seconds=round(time.monotonic() - self._down_since, 1),
                failed_attempts=self._failures,
            )
        self._down_since = None
        self._failures = 0
        self._set_state(ConnectionState.READY)

    def _note_failure(self, error: AriError, delay: float, was_ready: bool) -> None:
        self._failures += 1
        first = self._down_since is None
        if first:
            self._down_since = time.monotonic()
        event = "ari_connection_lost" if was_ready else "ari_connection_failed"
        level = logging.WARNING if first else logging.DEBUG
        log.log(level, event, error=str(error), retry_in_seconds=round(delay, 2), attempt=self._failures)

    def _version(self) -> str | None:
        return None if self.asterisk is None else self.asterisk.version

    def _set_state(self, state: ConnectionState) -> None:
        previous = self._state
        if state is previous:
            return
        self._state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if previous is ConnectionState.READY and self._on_disconnected is not None:
            self._on_disconnected()
