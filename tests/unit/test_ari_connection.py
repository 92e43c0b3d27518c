"""The connection state machine, driven by a tiny local Asterisk look-alike that accepts,
refuses, drops and rejects."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from aiohttp import WSMsgType, test_utils, web

from callkeeper.ari import events as ari
from callkeeper.ari.connection import AriConnection, ConnectionState
from callkeeper.ari.errors import AriAuthError, AriConflict, AriNotFound, AriUnavailable, is_retryable
from callkeeper.config.model import AsteriskConfig, Secret
from tests.ari_rest import AriClientForTests

PASSWORD = "s3cret-Pa55"
AUTHORIZATION = "Basic Y2FsbGtlZXBlcjpzM2NyZXQtUGE1NQ=="  # callkeeper:s3cret-Pa55
INFO = {"system": {"version": "22.10.1", "entity_id": "02:fc"}, "status": {}}


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": "2026-11-27T07:35:31.119+0000",
        "application": "callkeeper",
        "asterisk_id": "02:fc",
        **fields,
    }


def varset(n: int) -> dict[str, Any]:
    return event("ChannelVarset", variable="N", value=str(n))


class FakeAsterisk:
    """`info_status` answers GET /ari/asterisk/info (404 as HTML, like Asterisk while loading);
    every accepted websocket gets `greeting` frames, then stays open until `drop()`. With
    `rest_replies` (uri -> status, body) it answers RESTRequest frames like Asterisk 22.4+
    (404 for other uris, nothing for those in `rest_held`); without, it ignores them."""

    def __init__(self) -> None:
        self.info_status = 200
        self.ws_status = 101
        self.greeting: list[str] = []
        self.answer_pings = True
        self.sockets: list[web.WebSocketResponse] = []
        self.handshakes: list[web.Request] = []
        self.info_requests = 0
        self.rest_replies: dict[str, tuple[int, Any]] | None = None
        self.rest_held: set[str] = set()
        self.rest_requests: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        self.server: test_utils.TestServer | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ari/asterisk/info", self.info)
        app.router.add_get("/ari/events", self.events)
        return app

    async def start(self) -> None:
        self.server = test_utils.TestServer(self.app(), host="127.0.0.1", port=self.port or None)
        await self.server.start_server()
        self.port = self.server.port or 0

    async def stop(self) -> None:
        """Gone: the port refuses connections until `start()`."""
        await self.drop()
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def drop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        self.sockets.clear()

    async def info(self, request: web.Request) -> web.Response:
        self.info_requests += 1
        if request.headers.get("Authorization") != AUTHORIZATION:
            return web.json_response({"message": "Authentication required"}, status=401)
        if self.info_status == 404:
            return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")
        if self.info_status != 200:
            return web.json_response({"message": "busy"}, status=self.info_status)
        return web.json_response(INFO)

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.handshakes.append(request)
        if self.ws_status != 101:
            return web.json_response({"message": "Authentication required"}, status=self.ws_status)
        socket = web.WebSocketResponse(autoping=self.answer_pings)
        await socket.prepare(request)
        self.sockets.append(socket)
        for frame in self.greeting:
            await socket.send_str(frame)
        self.connected.set()
        async for message in socket:
            if message.type is WSMsgType.ERROR:
                break
            if message.type is WSMsgType.TEXT and self.rest_replies is not None:
                await self.answer_rest(socket, json.loads(message.data))
        return socket

    async def answer_rest(self, socket: web.WebSocketResponse, request: dict[str, Any]) -> None:
        self.rest_requests.append(request)
        uri = request["uri"]
        if uri in self.rest_held:
            return
        status, body = (self.rest_replies or {}).get(uri, (404, {"message": "Resource not found"}))
        reply = {"type": "RESTResponse", "request_id": request["request_id"], "status_code": status}
        if body is not None:
            reply |= {"content_type": "application/json", "message_body": json.dumps(body)}
        await socket.send_str(json.dumps(reply))


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    fake = FakeAsterisk()
    await fake.start()
    yield fake
    await fake.stop()


class RecordingBackoff:
    """Short fixed delays; remembers the attempt numbers it was asked for."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.attempts: list[int] = []
        self.resets = 0

    def next_delay(self, attempt: int) -> float:
        self.attempts.append(attempt)
        return self.delay

    def reset(self) -> None:
        self.resets += 1


class Owner:
    """Plays the daemon: records callbacks in one timeline."""

    def __init__(self, ready_work: float = 0.0) -> None:
        self.timeline: list[Any] = []
        self.events: list[ari.AriEvent] = []
        self.ready_work = ready_work
        self.received = asyncio.Event()

    def on_event(self, event: ari.AriEvent) -> None:
        self.events.append(event)
        self.timeline.append(event)
        self.received.set()

    async def on_ready(self) -> None:
        self.timeline.append("ready")
        await asyncio.sleep(self.ready_work)
        self.timeline.append("reconciled")

    def on_disconnected(self) -> None:
        self.timeline.append("disconnected")

    async def wait_events(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.events) < count:
                self.received.clear()
                await self.received.wait()


def make_config(port: int, password: str = PASSWORD) -> AsteriskConfig:
    return AsteriskConfig(
        url=f"http://127.0.0.1:{port}",
        username="callkeeper",
        password=Secret(password),
        app="callkeeper",
        connect_timeout_seconds=1.0,
        request_timeout_seconds=1.0,
    )


def make_connection(
    port: int,
    owner: Owner,
    backoff: RecordingBackoff | None = None,
    password: str = PASSWORD,
    on_event: Callable[[ari.AriEvent], None] | None = None,
    **options: Any,
) -> AriConnection:
    return AriConnection(
        make_config(port, password),
        on_event=on_event or owner.on_event,
        on_ready=owner.on_ready,
        on_disconnected=owner.on_disconnected,
        backoff=backoff or RecordingBackoff(),
        **options,
    )


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def wait_state(connection: AriConnection, *states: ConnectionState) -> None:
    await until(lambda: connection.state in states)


async def test_connects_and_delivers_events_after_on_ready(asterisk: FakeAsterisk) -> None:
    asterisk.greeting = [json.dumps(varset(n)) for n in range(3)]
    owner = Owner(ready_work=0.2)
    connection = make_connection(asterisk.port, owner)
    initial_state = connection.state

    runner = asyncio.create_task(connection.run())
    await wait_state(connection, ConnectionState.CONNECTING)
    async with asyncio.timeout(5):
        await connection.wait_ready()
    await owner.wait_events(3)

    # The frames were sent before on_ready finished; they waited for it, in order.
    assert initial_state is ConnectionState.DISCONNECTED
    assert owner.timeline[:2] == ["ready", "reconciled"]
    assert [e.value for e in owner.events if isinstance(e, ari.ChannelVarset)] == ["0", "1", "2"]
    assert connection.ready
    assert connection.reconnects == 0
    assert connection.asterisk is not None
    assert connection.asterisk.version == "22.10.1"
    handshake = asterisk.handshakes[0]
    assert handshake.headers["Authorization"] == AUTHORIZATION
    assert dict(handshake.query) == {"app": "callkeeper", "subscribeAll": "false"}
    assert PASSWORD not in handshake.path_qs

    await connection.close()
    await runner
    assert connection.state is ConnectionState.CLOSED
    assert owner.timeline[-1] == "disconnected"


async def test_wrong_password_is_fatal_with_a_clear_message(asterisk: FakeAsterisk) -> None:
    owner = Owner()
    backoff = RecordingBackoff()
    connection = make_connection(asterisk.port, owner, backoff, password="wrong")
    waiter = asyncio.create_task(connection.wait_ready())

    with structlog.testing.capture_logs() as logs, pytest.raises(AriAuthError) as caught:
        await connection.run()

    assert str(caught.value).endswith(
        "ARI rejected user 'callkeeper': check asterisk.username/password and ari.conf"
    )
    assert connection.state is ConnectionState.FATAL
    assert connection.last_error is caught.value
    assert backoff.attempts == []
    assert asterisk.info_requests == 1
    assert [entry["log_level"] for entry in logs] == ["error"]
    with pytest.raises(AriAuthError):
        await waiter


async def test_websocket_refusing_credentials_is_fatal_too(asterisk: FakeAsterisk) -> None:
    asterisk.ws_status = 401
    connection = make_connection(asterisk.port, Owner())

    with pytest.raises(AriAuthError, match="ARI rejected user"):
        await connection.run()


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_asterisk_still_loading_is_retried(asterisk: FakeAsterisk, status: int) -> None:
    asterisk.info_status = status
    backoff = RecordingBackoff()
    connection = make_connection(asterisk.port, Owner(), backoff)
    runner = asyncio.create_task(connection.run())

    await until(lambda: asterisk.info_requests >= 3)
    assert not connection.ready
    assert isinstance(connection.last_error, AriUnavailable)
    assert connection.last_error.status == status
    asterisk.info_status = 200
    async with asyncio.timeout(5):
        await connection.wait_ready()

    assert backoff.attempts[:3] == [0, 1, 2]
    assert connection.reconnects == 0
    await connection.close()
    await runner


async def test_refused_then_up_logs_one_warning_then_debug_then_info(unused_tcp_port: int) -> None:
    asterisk = FakeAsterisk()
    asterisk.port = unused_tcp_port
    connection = make_connection(unused_tcp_port, Owner(), RecordingBackoff(0.02))

    with structlog.testing.capture_logs() as logs:
        runner = asyncio.create_task(connection.run())
        await until(lambda: len(logs) >= 4)
        await asterisk.start()
        async with asyncio.timeout(5):
            await connection.wait_ready()
        await connection.close()
        await runner
    await asterisk.stop()

    failures = [entry for entry in logs if entry["event"] == "ari_connection_failed"]
    assert failures[0]["log_level"] == "warning"
    assert {entry["log_level"] for entry in failures[1:]} == {"debug"}
    assert "Connect call failed" in failures[0]["error"] or "refused" in failures[0]["error"].lower()
    restored = [entry for entry in logs if entry["event"] == "ari_connection_restored"]
    assert len(restored) == 1
    assert restored[0]["log_level"] == "info"
    assert restored[0]["down_seconds"] >= 0
    assert restored[0]["failed_attempts"] == len(failures)
    assert not any(PASSWORD in repr(entry) for entry in logs)


async def test_dropped_socket_reconnects_with_on_ready_again(asterisk: FakeAsterisk) -> None:
    owner = Owner()
    connection = make_connection(asterisk.port, owner)
    runner = asyncio.create_task(connection.run())
    async with asyncio.timeout(5):
        await connection.wait_ready()

    with structlog.testing.capture_logs() as logs:
        await asterisk.drop()
        await wait_state(connection, ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)
        async with asyncio.timeout(5):
            await connection.wait_ready()

    assert connection.reconnects == 1
    assert owner.timeline == ["ready", "reconciled", "disconnected", "ready", "reconciled"]
    assert [entry["event"] for entry in logs if entry["log_level"] != "debug"] == [
        "ari_connection_lost",
        "ari_connection_restored",
    ]
    assert logs[0]["log_level"] == "warning"
    await connection.close()
    await runner


async def test_flapping_socket_backs_off_until_it_stays_up(asterisk: FakeAsterisk) -> None:
    backoff = RecordingBackoff()
    connection = make_connection(asterisk.port, Owner(), backoff, stable_after_seconds=0.3)
    runner = asyncio.create_task(connection.run())

    for _ in range(3):
        async with asyncio.timeout(5):
            await connection.wait_ready()
        await asterisk.drop()
        await wait_state(connection, ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)
    assert backoff.attempts == [0, 1, 2]
    assert backoff.resets == 0

    async with asyncio.timeout(5):
        await connection.wait_ready()
    await asyncio.sleep(0.4)
    await asterisk.drop()
    await wait_state(connection, ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)

    assert backoff.attempts == [0, 1, 2, 0]
    assert backoff.resets == 1
    assert connection.reconnects == 3
    await connection.close()
    await runner


async def test_silently_dead_socket_is_noticed_by_ping(asterisk: FakeAsterisk) -> None:
    asterisk.answer_pings = False
    owner = Owner()
    connection = make_connection(asterisk.port, owner, ping_interval_seconds=0.1)
    runner = asyncio.create_task(connection.run())
    async with asyncio.timeout(5):
        await connection.wait_ready()

    await until(lambda: "disconnected" in owner.timeline)

    assert isinstance(connection.last_error, AriUnavailable)
    await connection.close()
    await runner


async def test_bad_frames_are_skipped_and_unknown_events_delivered(asterisk: FakeAsterisk) -> None:
    asterisk.greeting = [
        json.dumps(varset(1)),
        json.dumps(event("StasisStart", args=[])),
        "not json",
        json.dumps(event("ChannelDialplan", dialplan_app="Stasis")),
        json.dumps(event("ChannelDialplan", dialplan_app="Wait")),
        json.dumps(varset(2)),
    ]
    owner = Owner()
    connection = make_connection(asterisk.port, owner)

    with structlog.testing.capture_logs() as logs:
        runner = asyncio.create_task(connection.run())
        await owner.wait_events(4)
        await connection.close()
        await runner

    assert [event.type for event in owner.events] == [
        "ChannelVarset",
        "ChannelDialplan",
        "ChannelDialplan",
        "ChannelVarset",
    ]
    assert isinstance(owner.events[1], ari.UnknownEvent)
    by_event = {entry["event"]: entry for entry in logs}
    assert by_event["ari_event_malformed"]["log_level"] == "warning"
    assert by_event["ari_event_malformed"]["type"] == "StasisStart"
    assert by_event["ari_frame_not_json"]["log_level"] == "warning"
    assert [entry["type"] for entry in logs if entry["event"] == "ari_event_unknown"] == ["ChannelDialplan"]


async def test_a_failing_handler_does_not_stop_the_stream(asterisk: FakeAsterisk) -> None:
    asterisk.greeting = [json.dumps(varset(n)) for n in range(3)]
    seen: list[str] = []

    def on_event(event: ari.AriEvent) -> None:
        assert isinstance(event, ari.ChannelVarset)
        seen.append(event.value)
        if event.value == "1":
            raise RuntimeError("bug in one call")

    connection = make_connection(asterisk.port, Owner(), on_event=on_event)

    with structlog.testing.capture_logs() as logs:
        runner = asyncio.create_task(connection.run())
        await until(lambda: len(seen) >= 3)
        await connection.close()
        await runner

    assert seen == ["0", "1", "2"]
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["ari_event_handler_failed"]


async def test_application_replaced_is_delivered_then_fatal(asterisk: FakeAsterisk) -> None:
    asterisk.greeting = [json.dumps(event("ApplicationReplaced"))]
    owner = Owner()
    connection = make_connection(asterisk.port, owner)

    with pytest.raises(AriConflict, match="another ARI client"):
        await connection.run()

    assert isinstance(owner.events[0], ari.ApplicationReplaced)
    assert connection.state is ConnectionState.FATAL
    assert owner.timeline[-1] == "disconnected"


async def test_close_while_backing_off_returns_promptly(unused_tcp_port: int) -> None:
    connection = make_connection(unused_tcp_port, Owner(), RecordingBackoff(delay=30.0))
    runner = asyncio.create_task(connection.run())
    await wait_state(connection, ConnectionState.DISCONNECTED)
    waiter = asyncio.create_task(connection.wait_ready())
    await asyncio.sleep(0)

    async with asyncio.timeout(1):
        await connection.close()
        await runner

    assert connection.state is ConnectionState.CLOSED
    with pytest.raises(AriUnavailable, match="closed"):
        await waiter


async def test_once_connected_the_backoff_is_capped(asterisk: FakeAsterisk) -> None:
    """Calls wait in Asterisk while the daemon is away: a long backoff must not keep it away."""
    backoff = RecordingBackoff(delay=30.0)
    connection = make_connection(asterisk.port, Owner(), backoff, reconnect_cap_seconds=0.1)
    runner = asyncio.create_task(connection.run())
    async with asyncio.timeout(5):
        await connection.wait_ready()

    await asterisk.drop()
    await wait_state(connection, ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)
    async with asyncio.timeout(2):
        await connection.wait_ready()

    assert backoff.attempts == [0]
    assert connection.reconnects == 1
    await connection.close()
    await runner


async def test_close_before_run_makes_run_return(asterisk: FakeAsterisk) -> None:
    connection = make_connection(asterisk.port, Owner())

    await connection.close()
    await connection.run()

    assert connection.state is ConnectionState.CLOSED
    assert asterisk.info_requests == 0


async def test_cancelling_run_propagates(asterisk: FakeAsterisk) -> None:
    connection = make_connection(asterisk.port, Owner())
    runner = asyncio.create_task(connection.run())
    async with asyncio.timeout(5):
        await connection.wait_ready()

    runner.cancel()

    with pytest.raises(asyncio.CancelledError):
        await runner
    assert connection.state is ConnectionState.CLOSED


async def test_websocket_debug_logging_never_shows_the_credentials(
    asterisk: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    asterisk.greeting = [json.dumps(varset(1))]
    owner = Owner()
    connection = make_connection(asterisk.port, owner)

    with caplog.at_level(logging.DEBUG):
        runner = asyncio.create_task(connection.run())
        await owner.wait_events(1)
        await connection.close()
        await runner

    assert AUTHORIZATION.split()[1] not in caplog.text
    assert "Authorization" not in caplog.text


async def test_rest_requests_ride_the_socket_while_ready(asterisk: FakeAsterisk) -> None:
    asterisk.rest_replies = {"asterisk/ping": (200, {"ping": "pong"}), "asterisk/info": (200, INFO)}
    owner = Owner()
    rest = AriClientForTests(make_config(asterisk.port))
    connection = make_connection(asterisk.port, owner, rest=rest)
    runner = asyncio.create_task(connection.run())
    await until(lambda: connection.requests.usable)
    info_over_http = asterisk.info_requests

    assert (await rest.asterisk_info()).version == "22.10.1"
    with pytest.raises(AriNotFound, match="Resource not found"):
        await rest.get_bridge("gone")
    assert asterisk.info_requests == info_over_http
    assert [request["uri"] for request in asterisk.rest_requests] == [
        "asterisk/ping",
        "asterisk/info",
        "bridges/gone",
    ]
    assert owner.events == []  # the answers are not events

    # Asterisk goes away while a request waits for its answer: it fails, retryably.
    asterisk.rest_held |= {"channels/c1", "asterisk/ping"}  # the next socket: no answers
    waiting = asyncio.create_task(rest.get_channel("c1"))
    await until(lambda: len(asterisk.rest_requests) == 4)
    await asterisk.drop()
    with pytest.raises(AriUnavailable, match="event socket closed") as caught:
        await waiting
    assert is_retryable(caught.value)
    assert not connection.requests.usable

    await until(lambda: connection.ready and asterisk.rest_requests[-1]["uri"] == "asterisk/ping")
    info_over_http = asterisk.info_requests
    assert (await rest.asterisk_info()).version == "22.10.1"
    assert asterisk.info_requests == info_over_http + 1

    await connection.close()
    await runner
    await rest.close()


async def test_an_asterisk_ignoring_rest_frames_gets_http(asterisk: FakeAsterisk) -> None:
    owner = Owner()
    rest = AriClientForTests(make_config(asterisk.port))
    connection = make_connection(asterisk.port, owner, rest=rest)
    runner = asyncio.create_task(connection.run())
    await wait_state(connection, ConnectionState.READY)
    await asyncio.sleep(0.05)
    info_requests = asterisk.info_requests
    await rest.asterisk_info()
    assert asterisk.info_requests == info_requests + 1
    assert not connection.requests.usable
    await connection.close()
    await runner
    await rest.close()
