"""A local stand-in for Twilio's Messages API and a webhook receiver, both checking what they get.

Like Twilio, a repeated `I-Twilio-Idempotency-Token` is answered with the first message instead of
sending another: `accepted` has each token once with the form it first came with, and `requests` every
request, repeats included.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.followups.builders import SID, TOKEN

MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
AUTHORIZATION = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


@dataclass
class FakeTwilio:
    accepted: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    new_messages: collections.Counter[str] = field(default_factory=collections.Counter)
    hooks: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 201
    first_reply_delay: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH, self.messages)
        app.router.add_post("/hooks/{name}", self.hook)
        return app

    async def messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != AUTHORIZATION:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        token = request.headers.get("I-Twilio-Idempotency-Token")
        form = dict(await request.post())
        if not token or set(form) != {"To", "From", "Body"}:
            return web.json_response({"code": 21000, "message": "bad request"}, status=400)
        self.requests.append(token)
        self.arrived.set()
        if self.status >= 300:
            return web.json_response({"code": 20500, "message": "Twilio says no"}, status=self.status)
        first = token not in self.accepted
        if first:
            # Accepted (and on its way to the phone) before the reply, as with the real API.
            self.accepted[token] = {key: str(value) for key, value in form.items()}
            self.new_messages[token] += 1
            await asyncio.sleep(self.first_reply_delay)
        return web.json_response({"sid": sid_for(token), "status": "queued"}, status=201)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        query = f"?{request.query_string}" if request.query_string else ""
        self.hooks.append((request.match_info["name"] + query, dict(request.headers), body))
        return web.Response(status=204)

    def hook_bodies(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(body) for hook, _, body in self.hooks if hook == name]


def sid_for(token: str) -> str:
    return "SM" + hashlib.sha256(token.encode()).hexdigest()[:32]


def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Callkeeper-Signature", ""))
