"""An in-process fake of Asterisk's ARI for fast component tests of the shell (and the bench replay):
REST over HTTP, the event websocket, and REST requests over that websocket as Asterisk 22.4+ takes
them (`RESTRequest` frames, see `callkeeper.ari.wsrest`). It records every request, answers from its
routes and responders, and pushes the events a test gives it. The real Asterisk stays the ground
truth (tests/integration); this is for what needs no channels: the shell's wiring and timing."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, test_utils, web

INFO = {"system": {"version": "22.10.1", "entity_id": "02:fc"}, "status": {}, "config": {}}
PING = {"ping": "pong", "asterisk_id": "02:fc", "timestamp": "2026-11-27T07:35:31.117+0000"}
JSON = "application/json"


@dataclass
class Seen:
    """One request as Asterisk would see it; `raw_path` always starts with /ari (as over HTTP)."""

    method: str
    raw_path: str
    query: dict[str, str]
    authorization: str | None
    body: Any
    lane: Literal["http", "websocket"] = "http"


Reply = tuple[int, Any]
Responder = Callable[[Seen], Reply | None]


@dataclass
class FakeAri:
    """Answers a request with the first of: `routes[(method, raw_path)]`, a `responders` answer that
    is not None, `reply` (status, body, content type). `websocket_requests`: answer `RESTRequest`
    frames (Asterisk 22.4+); off, they are ignored as older Asterisk does."""

    seen: list[Seen] = field(default_factory=list)
    reply: tuple[int, Any, str] = (204, None, JSON)
    delay: float = 0.0
    routes: dict[tuple[str, str], Reply] = field(
        default_factory=lambda: {
            ("GET", "/ari/asterisk/info"): (200, INFO),
            ("GET", "/ari/asterisk/ping"): (200, PING),
        }
    )
    responders: list[Responder] = field(default_factory=list)
    websocket_requests: bool = True
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    handshakes: list[dict[str, str]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def answer(self, seen: Seen) -> tuple[int, Any, str]:
        self.seen.append(seen)
        route = self.routes.get((seen.method, seen.raw_path))
        if route is not None:
            return (*route, JSON)
        for responder in self.responders:
            answer = responder(seen)
            if answer is not None:
                return (*answer, JSON)
        return self.reply

    async def handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        status, body, content_type = self.answer(
            Seen(
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                request.headers.get("Authorization"),
                json.loads(text) if text else None,
            )
        )
        await asyncio.sleep(self.delay)
        payload = body if isinstance(body, str) or body is None else json.dumps(body)
        return web.Response(status=status, text=payload, content_type=content_type)

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.handshakes.append(dict(request.query))
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        self.connected.set()
        authorization = request.headers.get("Authorization")
        try:
            async for message in socket:
                if message.type is WSMsgType.TEXT and self.websocket_requests:
                    await self.answer_frame(socket, json.loads(message.data), authorization)
        finally:
            self.sockets.remove(socket)
            if not self.sockets:
                self.connected.clear()
        return socket

    async def answer_frame(
        self, socket: web.WebSocketResponse, frame: Mapping[str, Any], authorization: str | None
    ) -> None:
        if frame.get("type") != "RESTRequest":
            return
        body = frame.get("message_body")
        status, answer, content_type = self.answer(
            Seen(
                frame["method"],
                "/ari/" + frame["uri"],
                {item["name"]: item["value"] for item in frame.get("query_strings", [])},
                authorization,
                json.loads(body) if body else None,
                "websocket",
            )
        )
        await asyncio.sleep(self.delay)
        reply: dict[str, Any] = {
            "type": "RESTResponse",
            "request_id": frame["request_id"],
            "status_code": status,
            "reason_phrase": "",
            "uri": frame["uri"],
        }
        if answer is not None:
            text = answer if isinstance(answer, str) else json.dumps(answer)
            reply |= {"content_type": content_type, "message_body": text}
        await socket.send_str(json.dumps(reply))

    async def push(self, *events: Mapping[str, Any]) -> None:
        """Sends each event to every connected socket, in order."""
        for event in events:
            text = json.dumps(event)
            for socket in list(self.sockets):
                await socket.send_str(text)

    async def drop(self) -> None:
        """Closes every event socket, as Asterisk going away does."""
        for socket in list(self.sockets):
            await socket.close()

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """The requests seen so far with this method and a `raw_path` matching `path` (a regex)."""
        return [
            seen
            for seen in self.seen
            if (method is None or seen.method == method)
            and (path is None or re.fullmatch(path, seen.raw_path))
        ]


async def serve(fake: FakeAri) -> test_utils.TestServer:
    """`fake` listening on a free loopback port; `close()` the server when done."""
    server = test_utils.TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    return server


class ServedInThread:
    """`fake` served by an event loop of its own in a thread, so that a benchmark can tell the
    fake's CPU time (`cpu_seconds` once stopped) from the daemon's, as with a real Asterisk."""

    def __init__(self, fake: FakeAri) -> None:
        self.fake = fake
        self.url = ""
        self.cpu_seconds = 0.0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-ari", daemon=True)

    def __enter__(self) -> ServedInThread:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.fake.app())
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.fake.drop())
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()
        self.cpu_seconds = time.thread_time()
