"""An in-process fake of Asterisk's ARI for fast component tests of the shell (and the bench replay):
REST over HTTP, the event websocket, and REST requests over that websocket as Asterisk 22.4+ takes
them (`RESTRequest` frames, see `callkeeper.ari.wsrest`). It records every request, answers from its
routes and responders, and pushes the events a test gives it. The real Asterisk stays the ground
truth (tests/integration); this is for what needs no channels: the shell's wiring and timing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import WSMsgType, test_utils, web

INFO = {"system": {"version": "22.10.1", "entity_id": "02:fc"}, "status": {}, "config": {}}
PING = {"ping": "pong", "asterisk_id": "02:fc", "timestamp": "2026-11-27T07:35:31.117+0000"}
JSON = "application/json"
# What an Asterisk with no calls answers to the questions the daemon asks when it connects.
NO_CALLS: dict[tuple[str, str], tuple[int, Any]] = {
    ("GET", "/ari/channels"): (200, []),
    ("GET", "/ari/bridges"): (200, []),
    ("GET", "/ari/endpoints"): (200, []),
}


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
    is not None, `reply` (status, body, content type); a text body of a route or responder goes out
    as HTML (Asterisk's 404 while it loads). `websocket_requests`: answer `RESTRequest` frames
    (Asterisk 22.4+), except those to a `held` path; off, they are ignored as older Asterisk does.
    With `authorization`, a request or websocket without that header gets 401; `refuse_websocket`
    answers every websocket with that status; each accepted websocket gets the `greeting` frames."""

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
    held: set[str] = field(default_factory=set)
    authorization: str | None = None
    refuse_websocket: int | None = None
    greeting: list[str] = field(default_factory=list)
    answer_pings: bool = True
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    handshakes: list[Seen] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    server: test_utils.TestServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None, "not started"
        return self.server.port

    async def start(self, port: int | None = None) -> None:
        """Listens on loopback, on `port` (again after `stop()`) or a free one."""
        self.server = test_utils.TestServer(self.app(), host="127.0.0.1", port=port)
        await self.server.start_server()

    async def stop(self) -> None:
        """Gone: the port refuses connections until `start()`."""
        await self.drop()
        if self.server is not None:
            await self.server.close()
            self.server = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def answer(self, seen: Seen) -> tuple[int, Any, str]:
        self.seen.append(seen)
        if self.authorization is not None and seen.authorization != self.authorization:
            return 401, {"message": "Authentication required"}, JSON
        answer = self.routes.get((seen.method, seen.raw_path))
        for responder in self.responders:
            if answer is not None:
                break
            answer = responder(seen)
        if answer is None:
            return self.reply
        status, body = answer
        return status, body, "text/html" if isinstance(body, str) else JSON

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
        authorization = request.headers.get("Authorization")
        self.handshakes.append(
            Seen("GET", request.path, dict(request.query), authorization, None, "websocket")
        )
        refusal = self.refuse_websocket
        if refusal is None and self.authorization is not None and authorization != self.authorization:
            refusal = 401
        if refusal is not None:
            return web.json_response({"message": "Authentication required"}, status=refusal)
        socket = web.WebSocketResponse(autoping=self.answer_pings)
        await socket.prepare(request)
        self.sockets.append(socket)
        for frame in self.greeting:
            await socket.send_str(frame)
        self.connected.set()
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
        seen = Seen(
            frame["method"],
            "/ari/" + frame["uri"],
            {item["name"]: item["value"] for item in frame.get("query_strings", [])},
            authorization,
            json.loads(body) if body else None,
            "websocket",
        )
        status, answer, content_type = self.answer(seen)
        if seen.raw_path in self.held:
            return
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

    def requests(
        self, method: str | None = None, path: str | None = None, lane: str | None = None
    ) -> list[Seen]:
        """The requests seen so far with this method, a `raw_path` matching `path` (a regex), and
        over this lane (http or websocket)."""
        return [
            seen
            for seen in self.seen
            if (method is None or seen.method == method)
            and (path is None or re.fullmatch(path, seen.raw_path))
            and (lane is None or seen.lane == lane)
        ]


def answers_at_once() -> Responder:
    """Asterisk's answers to what a call's worker asks (playbacks, new channels, bridges, the
    channel list), at once."""

    def answer(seen: Seen) -> Reply | None:
        path, query = seen.raw_path.removeprefix("/ari"), seen.query
        if seen.method == "POST" and path.endswith("/play"):
            return 200, {
                "id": query["playbackId"],
                "media_uri": query["media"],
                "target_uri": path,
                "state": "queued",
            }
        if seen.method == "POST" and path == "/channels/create":
            return 200, channel(query["channelId"], f"{query['endpoint']};1")
        if seen.method == "POST" and path == "/bridges":
            return 200, {
                "id": query["bridgeId"],
                "technology": "simple_bridge",
                "bridge_type": "mixing",
                "name": query.get("name", ""),
                "channels": [],
            }
        if seen.method == "GET" and path == "/channels":
            return 200, []
        return None

    return answer


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    """An ARI event of the app `callkeeper`, as the event websocket carries it."""
    return {
        "type": event_type,
        "timestamp": "2026-11-27T07:35:31.119+0000",
        "application": "callkeeper",
        "asterisk_id": "02:fc",
        **fields,
    }


def channel(
    channel_id: str,
    name: str,
    *,
    state: str = "Down",
    caller: str = "",
    app_name: str = "Stasis",
    app_data: str = "",
    exten: str = "s",
) -> dict[str, Any]:
    """A channel as ARI shows it."""
    return {
        "id": channel_id,
        "name": name,
        "state": state,
        "caller": {"name": "", "number": caller},
        "connected": {"name": "", "number": ""},
        "dialplan": {
            "context": "default",
            "exten": exten,
            "priority": 1,
            "app_name": app_name,
            "app_data": app_data,
        },
        "creationtime": "2026-01-01T00:00:00.000+0000",
        "language": "en",
    }


class ServedInProcess:
    """A fake answering at once (`answers_at_once`) in a process of its own, as Asterisk is: a
    benchmark's daemon neither shares its core nor waits for the GIL with it. `requests()`: how many
    it has seen so far."""

    def __init__(self) -> None:
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServedInProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_ari"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        self.url = self._ask(None)
        return self

    def requests(self) -> int:
        return int(self._ask("count"))

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.close()
        try:
            process.wait(10)
        finally:
            process.stdout.close()

    def _ask(self, question: str | None) -> str:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        if question is not None:
            process.stdin.write(question + "\n")
            process.stdin.flush()
        answer = process.stdout.readline().strip()
        if not answer:
            raise RuntimeError(f"the fake ARI's process ended (exit status {process.poll()})")
        return answer


async def _serve_on_stdio() -> None:
    """`ServedInProcess`'s side: prints the URL, then the number of requests seen for each line
    read, until the end of its input."""
    fake = FakeAri(responders=[answers_at_once()])
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"http://{host}:{port}/", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print(len(fake.seen), flush=True)
    await fake.drop()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(_serve_on_stdio())
