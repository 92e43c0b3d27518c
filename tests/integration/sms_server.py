"""A local stand-in for Twilio's Messages API that the real daemon texts through (`base_url`).

It is `tests/followups/fake_twilio.py`'s `FakeTwilio` (exact path with the account SID, Basic auth
`sid:token`, form fields `To`, `From`, `Body` and nothing else, the `I-Twilio-Idempotency-Token`
header; a repeated token is answered with the first message instead of sending another), served from
its own thread and event loop: it keeps answering while the test blocks on the daemon process
(starting, stopping, SIGKILL). Every request it refuses is kept in `refused`, so a test can tell a
malformed request from a text that was never sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tests.followups.builders import SID, TOKEN
from tests.followups.fake_twilio import MESSAGES_PATH, FakeTwilio, sid_for

FORM = "application/x-www-form-urlencoded"
__all__ = ["SmsServer", "sid_for", "sms_server"]


@dataclass
class SmsServer:
    twilio: FakeTwilio = field(default_factory=FakeTwilio)
    refused: list[tuple[str, int]] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop = field(init=False, repr=False)
    _stopping: asyncio.Event = field(init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def provider(self) -> dict[str, str]:
        """The `sms_providers` entry of a daemon config that texts through this server."""
        return {"type": "twilio", "account_sid": SID, "auth_token": TOKEN, "base_url": self.base_url}

    def slow_down(self, seconds: float) -> None:
        """Accept each new message at once but reply only `seconds` later."""
        self.twilio.first_reply_delay = seconds

    def texts_to(self, number: str) -> list[dict[str, str]]:
        """The messages accepted for `number` (one per idempotency token)."""
        return [form for form in list(self.twilio.accepted.values()) if form["To"] == number]

    def requests_for(self, key: str) -> int:
        """How often a text with idempotency key `key` was posted, repeats included."""
        return list(self.twilio.requests).count(key)

    def accepted(self, key: str) -> dict[str, str] | None:
        return self.twilio.accepted.get(key)

    @web.middleware
    async def _check_form(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == MESSAGES_PATH and request.content_type != FORM:
            response: web.StreamResponse = web.json_response(
                {"code": 21000, "message": f"expected {FORM}"}, status=400
            )
        else:
            response = await handler(request)
        if response.status >= 300:
            self.refused.append((request.path, response.status))
        return response

    async def run(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = self.twilio.app()
        app.middlewares.append(self._check_form)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        address: Any = runner.addresses[0]
        self.port = int(address[1])
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)


@contextmanager
def sms_server() -> Iterator[SmsServer]:
    server = SmsServer()
    ready = threading.Event()
    thread = threading.Thread(target=asyncio.run, args=(server.run(ready),), name="sms-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the SMS server did not start")
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)
