"""Inbound STOP/START texts: keywords as carriers define them, replays refused, the public URL behind a
reverse proxy, and bad headers answered 4xx with one log line."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from callkeeper.api.inbound_sms import InboundText, read_webhook, twilio_signature, webhook_signature
from callkeeper.api.server import build_app
from callkeeper.config.model import HttpConfig, Secret
from tests.unit.test_api_fakes import TOKEN, FakeHistory, fakes

Client = TestClient[web.Request, web.Application]
TWILIO_PATH = "/api/v1/sms/twilio/inbound"
HOOK_PATH = "/api/v1/sms/hook/inbound"
PUBLIC_URL = "https://pbx.example.com/callkeeper"


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "Stop.",
        "STOP!",
        "stop all",
        "STOPALL",
        "  Stop   All ",
        "unsubscribe",
        "Cancel",
        "END",
        "quit",
        "OPTOUT",
        "revoke",
        "\uff33\uff54\uff4f\uff50\uff01",  # full-width "Stop!"
        '"Stop"',
        "¡STOP!",
        "Stop texting me",
    ],
)
def test_opt_out_words(body: str) -> None:
    assert InboundText("+14155550111", body, "SM1").opt_out is True


@pytest.mark.parametrize("body", ["START", "start.", "Unstop", "YES", " yes! ", "\uff39\uff25\uff33"])
def test_opt_in_words(body: str) -> None:
    assert InboundText("+14155550111", body, "SM1").opt_out is False


@pytest.mark.parametrize("body", ["", "  ", "Thanks!", "Yes, call me back", "Started it", "stopped", "!!!"])
def test_other_replies_change_nothing(body: str) -> None:
    assert InboundText("+14155550111", body, "SM1").opt_out is None


@pytest.fixture
def history() -> FakeHistory:
    return fakes()[0]


async def _client(history: FakeHistory, http: HttpConfig) -> Client:
    return TestClient(TestServer(build_app(history, fakes()[1], http)))


@pytest.fixture
async def client(history: FakeHistory) -> AsyncIterator[Client]:
    async with await _client(history, HttpConfig(token=Secret(TOKEN))) as test_client:
        yield test_client


def _twilio_form(body: str, sid: str = "SM0001") -> dict[str, str]:
    return {"From": "+14155550111", "To": "+12125550100", "Body": body, "MessageSid": sid}


async def _post_twilio(client: Client, form: dict[str, str], url: str | None = None) -> int:
    signed_url = url or str(client.make_url(TWILIO_PATH))
    signature = twilio_signature("twilio-auth", signed_url, list(form.items()))
    async with client.post(TWILIO_PATH, data=form, headers={"X-Twilio-Signature": signature}) as response:
        return response.status


async def test_a_replayed_twilio_message_is_refused(client: Client, history: FakeHistory) -> None:
    assert await _post_twilio(client, _twilio_form("STOP", "SM0001")) == 200
    assert await _post_twilio(client, _twilio_form("START", "SM0002")) == 200
    with capture_logs() as logs:
        assert await _post_twilio(client, _twilio_form("STOP", "SM0001")) == 409
    assert [(number, out) for number, out, _, _ in history.opt_out_calls] == [
        ("+14155550111", True),
        ("+14155550111", False),
    ]
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["inbound_sms_refused"]


async def test_a_stop_the_store_failed_to_apply_is_taken_when_the_provider_retries(
    client: Client, history: FakeHistory
) -> None:
    history.opt_out_failures = 1
    with capture_logs():
        assert await _post_twilio(client, _twilio_form("STOP", "SM0001")) == 500
    assert await _post_twilio(client, _twilio_form("STOP", "SM0001")) == 200
    assert [(number, out) for number, out, _, _ in history.opt_out_calls] == [("+14155550111", True)]
    assert await _post_twilio(client, _twilio_form("STOP", "SM0001")) == 409


async def test_a_twilio_message_without_its_id_is_refused(client: Client, history: FakeHistory) -> None:
    form = _twilio_form("STOP")
    del form["MessageSid"]
    assert await _post_twilio(client, form) == 403
    assert history.opt_out_calls == []


async def _post_hook(client: Client, body: bytes, timestamp: str, signature: str | None = None) -> int:
    headers = {
        "X-Callkeeper-Timestamp": timestamp,
        "X-Callkeeper-Signature": signature or webhook_signature("hook-secret", body, timestamp),
    }
    async with client.post(HOOK_PATH, data=body, headers=headers) as response:
        return response.status


async def test_the_webhook_variant_signs_a_recent_timestamp_and_is_taken_once(
    client: Client, history: FakeHistory
) -> None:
    body = json.dumps({"from": "+14155550111", "body": "START"}).encode()
    now = int(time.time())
    assert await _post_hook(client, body, str(now)) == 200
    assert await _post_hook(client, body, str(now)) == 409  # the same request again
    assert await _post_hook(client, body, str(now - 301)) == 403  # too old
    assert await _post_hook(client, body, str(now + 301)) == 403  # from the future
    unsigned_time = webhook_signature("hook-secret", body, str(now))
    assert await _post_hook(client, body, str(now + 1), unsigned_time) == 403  # timestamp not signed
    assert await _post_hook(client, body, "") == 403
    assert await _post_hook(client, body, "12.5") == 403
    assert len(history.opt_out_calls) == 1


def test_read_webhook_checks_the_window_against_now() -> None:
    body = b'{"from": "+14155550111", "body": "STOP"}'
    signature = webhook_signature("s", body, "1000")
    assert read_webhook("s", body, signature, "1000", now=1300) is not None
    assert read_webhook("s", body, signature, "1000", now=1301) is None
    assert read_webhook("s", body, signature, "1000", now=699) is None


async def test_behind_a_tls_proxy_twilio_signs_the_public_url(history: FakeHistory) -> None:
    http = HttpConfig(token=Secret(TOKEN), public_url=PUBLIC_URL)
    async with await _client(history, http) as client:
        form = _twilio_form("STOP")
        assert await _post_twilio(client, form, f"{PUBLIC_URL}{TWILIO_PATH}") == 200
        assert await _post_twilio(client, _twilio_form("STOP", "SM0002")) == 403  # the URL seen here
    assert [call[:3] for call in history.opt_out_calls] == [("+14155550111", True, "sms:twilio")]


@pytest.mark.parametrize("header", ["X-Twilio-Signature", "X-Callkeeper-Signature", "X-Callkeeper-Timestamp"])
async def test_a_non_ascii_header_is_a_403_and_one_log_line(client: Client, header: str) -> None:
    path = TWILIO_PATH if header == "X-Twilio-Signature" else HOOK_PATH
    with capture_logs() as logs:
        async with client.post(
            path, data=b"From=%2B14155550111&Body=STOP", headers={header: "s\u00e9\u00e9n\u4e2d"}
        ) as response:
            assert response.status == 403
    assert [entry["event"] for entry in logs if entry["log_level"] != "debug"] == ["inbound_sms_refused"]


async def test_a_host_the_url_parser_rejects_is_a_400_and_one_log_line(client: Client) -> None:
    host = f"127.0.0.1:{client.port}x"
    form = _twilio_form("STOP")
    with capture_logs() as logs:
        async with client.post(
            TWILIO_PATH, data=form, headers={"Host": host, "X-Twilio-Signature": "x"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid Host header"
    assert [entry["event"] for entry in logs if entry["log_level"] != "debug"] == ["inbound_sms_refused"]
