"""SMS providers and webhook posts against a local HTTP server that checks the exact request."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import test_utils, web

from callkeeper.ari.rest import AriRestClient
from callkeeper.config.model import AsteriskConfig, Secret, SmsProvider, SmsProviderType
from callkeeper.followups.providers import (
    DeliveryError,
    SmsMessage,
    dump_body,
    post_signed,
    signature,
    sms_sender,
)
from tests.followups.builders import MOBILE, SENDER, SID, TOKEN, twilio

MESSAGE = SmsMessage(
    to=MOBILE,
    sender=SENDER,
    body="Sorry we missed you & co: ça va?",
    call_id="call-1",
    idempotency_key="sms:call-1",
)
HOOK_SECRET = "whsec-abc123"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request and answers `reply` (status, JSON body), after `delay` seconds."""

    seen: list[Seen] = field(default_factory=list)
    reply: tuple[int, object] = (201, {"sid": "SM0001"})
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            Seen(
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        await asyncio.sleep(self.delay)
        status, body = self.reply
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recording = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    server = test_utils.TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield recording, f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_twilio_request_is_exactly_what_twilio_expects(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    sender = sms_sender(twilio(url + "/"), session, None, 2.0)
    assert await sender.send(MESSAGE) == "SM0001"
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(seen.body.decode(), strict_parsing=True) == {
        "To": [MOBILE],
        "From": [SENDER],
        "Body": [MESSAGE.body],
    }
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert seen.headers["I-Twilio-Idempotency-Token"] == "sms:call-1"
    assert seen.query == {}


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
async def test_twilio_failures(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession, status: int, retryable: bool
) -> None:
    server, url = receiver
    server.reply = (status, {"code": 21211, "message": "The 'To' number is not valid.", "status": status})
    with pytest.raises(DeliveryError) as raised:
        await sms_sender(twilio(url), session, None, 2.0).send(MESSAGE)
    assert raised.value.retryable is retryable
    assert str(raised.value) == f"HTTP {status}: The 'To' number is not valid."
    assert TOKEN not in repr(raised.value)


async def test_twilio_timeout_and_refused_connection_are_retried(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    server.delay = 1.0
    with pytest.raises(DeliveryError) as timed_out:
        await sms_sender(twilio(url), session, None, 0.1).send(MESSAGE)
    assert timed_out.value.retryable
    assert str(timed_out.value) == "no response: TimeoutError"
    with pytest.raises(DeliveryError) as refused:
        await sms_sender(twilio("http://127.0.0.1:9"), session, None, 2.0).send(MESSAGE)
    assert refused.value.retryable
    assert str(refused.value).startswith("no response: ")
    assert "127.0.0.1" not in str(refused.value)


async def test_twilio_reply_without_sid(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    server.reply = (201, ["odd"])
    assert await sms_sender(twilio(url), session, None, 2.0).send(MESSAGE) is None


def webhook_provider(url: str, secret: str | None) -> SmsProvider:
    settings: dict[str, str | Secret] = {"url": url + "/sms?token=abc"}
    if secret is not None:
        settings["secret"] = Secret(secret)
    return SmsProvider("gateway", SmsProviderType.WEBHOOK, settings)


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_webhook_provider_posts_signed_json(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    server.reply = (200, {"id": "gw-7"})
    assert await sms_sender(webhook_provider(url, HOOK_SECRET), session, None, 2.0).send(MESSAGE) == "gw-7"
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/sms", {"token": "abc"})
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "to": MOBILE,
        "from": SENDER,
        "body": MESSAGE.body,
        "call_id": "call-1",
        "idempotency_key": "sms:call-1",
    }
    assert seen.headers["Idempotency-Key"] == "sms:call-1"
    assert verify(HOOK_SECRET, seen.body, seen.headers["X-Callkeeper-Signature"])
    assert not verify("another secret", seen.body, seen.headers["X-Callkeeper-Signature"])


async def test_webhook_provider_without_secret_is_unsigned(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    server.reply = (204, None)
    assert await sms_sender(webhook_provider(url, None), session, None, 2.0).send(MESSAGE) is None
    assert "X-Callkeeper-Signature" not in server.seen[0].headers


async def test_post_signed_sends_the_bytes_it_signs(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    body = dump_body({"event": "call.ended", "call": {"id": "c1", "caller": "ñ"}})
    await post_signed(
        session, url + "/hook", body, secret=HOOK_SECRET, idempotency_key="webhook:x", timeout_seconds=2.0
    )
    (seen,) = server.seen
    assert seen.body == body
    assert seen.headers["X-Callkeeper-Signature"] == signature(HOOK_SECRET, body)
    assert verify(HOOK_SECRET, seen.body, seen.headers["X-Callkeeper-Signature"])
    assert seen.headers["Idempotency-Key"] == "webhook:x"
    server.reply = (410, {"message": "gone"})
    with pytest.raises(DeliveryError) as raised:
        await post_signed(session, url, body, secret=None, idempotency_key="k", timeout_seconds=2.0)
    assert (str(raised.value), raised.value.retryable) == ("HTTP 410: gone", False)


def asterisk_provider() -> SmsProvider:
    return SmsProvider("pbx", SmsProviderType.ASTERISK, {"endpoint": "pjsip:trunk/{to}"})


async def test_asterisk_provider_uses_ari_send_message(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    server, url = receiver
    server.reply = (202, None)
    ari = AriRestClient(AsteriskConfig(url=url, username="ck", password=Secret("ari-pw")), session)
    assert await sms_sender(asterisk_provider(), session, ari, 2.0).send(MESSAGE) is None
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("PUT", "/ari/endpoints/sendMessage")
    assert seen.query == {"to": f"pjsip:trunk/{MOBILE}", "from": SENDER, "body": MESSAGE.body}


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (400, False), (503, True)])
async def test_asterisk_provider_failures(
    receiver: tuple[Receiver, str], session: aiohttp.ClientSession, status: int, retryable: bool
) -> None:
    server, url = receiver
    server.reply = (status, {"message": "Endpoint not found"})
    ari = AriRestClient(AsteriskConfig(url=url, username="ck", password=Secret("ari-pw")), session)
    with pytest.raises(DeliveryError) as raised:
        await sms_sender(asterisk_provider(), session, ari, 2.0).send(MESSAGE)
    assert raised.value.retryable is retryable
    assert "ari-pw" not in str(raised.value)


async def test_asterisk_provider_without_ari_fails_for_good(session: aiohttp.ClientSession) -> None:
    with pytest.raises(DeliveryError) as raised:
        await sms_sender(asterisk_provider(), session, None, 2.0).send(MESSAGE)
    assert raised.value.retryable is False
