"""AriRestClient against a tiny local HTTP server that records what it receives."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils

from callkeeper.ari.errors import AriAuthError, AriConflict, AriError, AriNotFound, AriUnavailable
from callkeeper.ari.rest import AriRestClient
from callkeeper.config.model import AsteriskConfig, Secret
from tests.ari_rest import AriClientForTests
from tests.fake_ari import FakeAri, Seen

PASSWORD = "s3cret-Pa55"
CHANNEL = {
    "id": "c1",
    "name": "PJSIP/alice-00000001",
    "state": "Down",
    "caller": {"name": "", "number": "100"},
    "connected": {"name": "", "number": ""},
    "dialplan": {"context": "x", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
    "creationtime": "2026-11-27T07:35:31.117+0000",
    "language": "en",
}


def config_for(port: int, request_timeout: float = 2.0) -> AsteriskConfig:
    return AsteriskConfig(
        url=f"http://127.0.0.1:{port}/",
        username="callkeeper",
        password=Secret(PASSWORD),
        app="callkeeper",
        connect_timeout_seconds=1.0,
        request_timeout_seconds=request_timeout,
    )


@pytest.fixture
async def rest(fake_ari: tuple[FakeAri, test_utils.TestServer]) -> AsyncIterator[AriClientForTests]:
    async with AriClientForTests(config_for(fake_ari[1].port or 0)) as client:
        yield client


def last(fake_ari: tuple[FakeAri, test_utils.TestServer]) -> Seen:
    return fake_ari[0].seen[-1]


async def test_credentials_only_in_the_basic_auth_header(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    fake_ari[0].reply = (200, [CHANNEL], "application/json")

    channels = await rest.list_channels()

    seen = last(fake_ari)
    assert [c.id for c in channels] == ["c1"]
    assert seen.authorization == "Basic " + base64.b64encode(f"callkeeper:{PASSWORD}".encode()).decode()
    assert seen.raw_path == "/ari/channels"
    assert PASSWORD not in seen.raw_path
    assert "api_key" not in seen.query
    assert PASSWORD not in json.dumps(seen.query)


async def test_query_parameters_and_json_body(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    fake_ari[0].reply = (200, CHANNEL, "application/json")

    channel = await rest.create_channel(
        "Local/5@sim-answer",
        "callkeeper",
        "leg,call-1",
        channel_id="c1",
        other_channel_id="c1;2",
        variables={"CALLERID(num)": "100"},
    )

    seen = last(fake_ari)
    assert channel.id == "c1"
    assert (seen.method, seen.raw_path) == ("POST", "/ari/channels/create")
    assert seen.query == {
        "endpoint": "Local/5@sim-answer",
        "app": "callkeeper",
        "appArgs": "leg,call-1",
        "channelId": "c1",
        "otherChannelId": "c1;2",
    }
    assert seen.body == {"variables": {"CALLERID(num)": "100"}}


async def test_ids_are_quoted_as_one_path_segment(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    await rest.hangup("odd/id ?#", "busy")

    seen = last(fake_ari)
    assert (seen.method, seen.raw_path, seen.query) == (
        "DELETE",
        "/ari/channels/odd%2Fid%20%3F%23",
        {"reason": "busy"},
    )


async def test_several_media_are_comma_separated(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    playback = {"id": "pb", "media_uri": "sound:a", "target_uri": "channel:c1", "state": "queued"}
    fake_ari[0].reply = (201, playback, "application/json")

    result = await rest.play("c1", ["sound:a", "sound:b"], "pb")

    assert result.state == "queued"
    assert last(fake_ari).query == {"media": "sound:a,sound:b", "playbackId": "pb"}


async def test_unset_optionals_are_left_out(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    await rest.dial("c1")
    await rest.dial("c1", caller="c0", timeout=20)

    first, second = fake_ari[0].seen
    assert first.query == {}
    assert second.query == {"caller": "c0", "timeout": "20"}


async def test_originate_needs_app_or_dialplan(rest: AriClientForTests) -> None:
    with pytest.raises(ValueError, match="either app or context"):
        await rest.originate("Local/1@x")
    with pytest.raises(ValueError, match="either app or context"):
        await rest.originate("Local/1@x", app="a", context="c", extension="s")


async def test_send_message_is_a_put_with_variables_in_the_body(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    fake_ari[0].reply = (202, None, "application/json")

    await rest.send_message("pjsip:alice", "sip:callkeeper@pbx", "Missed call", {"X-Call": "1"})

    seen = last(fake_ari)
    assert (seen.method, seen.raw_path) == ("PUT", "/ari/endpoints/sendMessage")
    assert seen.query == {"to": "pjsip:alice", "from": "sip:callkeeper@pbx", "body": "Missed call"}
    assert seen.body == {"variables": {"X-Call": "1"}}


@pytest.mark.parametrize(
    ("reply", "expected", "message"),
    [
        ((404, {"message": "Channel not found"}, "application/json"), AriNotFound, "Channel not found"),
        ((409, {"message": "Channel not in Stasis application"}, "application/json"), AriConflict, "Stasis"),
        (
            (400, {"message": "Invalid reason for hangup reason provided"}, "application/json"),
            AriError,
            "reason",
        ),
        ((401, {"message": "Authentication required"}, "application/json"), AriAuthError, "Authentication"),
        ((503, "<html>busy</html>", "text/html"), AriUnavailable, "server error"),
        ((404, "<html>Not Found</html>", "text/html"), AriUnavailable, "not loaded"),
    ],
)
async def test_failures_raise_typed_errors(
    fake_ari: tuple[FakeAri, test_utils.TestServer],
    rest: AriClientForTests,
    reply: tuple[int, Any, str],
    expected: type[AriError],
    message: str,
) -> None:
    fake_ari[0].reply = reply

    with pytest.raises(AriError) as caught:
        await rest.hangup("c1")

    assert type(caught.value) is expected
    assert caught.value.status == reply[0]
    assert message in caught.value.message
    assert PASSWORD not in str(caught.value)


async def test_refused_connection_is_unavailable(unused_tcp_port: int) -> None:
    async with AriRestClient(config_for(unused_tcp_port)) as rest:
        with pytest.raises(AriUnavailable) as caught:
            await rest.asterisk_info()

    assert caught.value.status is None
    assert caught.value.path == "/asterisk/info"


async def test_slow_answer_times_out_as_unavailable(fake_ari: tuple[FakeAri, test_utils.TestServer]) -> None:
    fake_ari[0].delay = 1.0
    async with AriRestClient(config_for(fake_ari[1].port or 0, request_timeout=0.2)) as rest:
        with pytest.raises(AriUnavailable, match="timed out"):
            await rest.answer("c1")


async def test_a_shared_session_is_left_open(fake_ari: tuple[FakeAri, test_utils.TestServer]) -> None:
    async with aiohttp.ClientSession() as session:
        rest = AriRestClient(config_for(fake_ari[1].port or 0), session)
        await rest.ring("c1")
        await rest.close()

        assert not session.closed
        assert last(fake_ari).raw_path == "/ari/channels/c1/ring"


async def test_record_channel_parameters(
    fake_ari: tuple[FakeAri, test_utils.TestServer], rest: AriClientForTests
) -> None:
    recording = {"name": "vm-1", "format": "wav", "state": "queued", "target_uri": "channel:c1"}
    fake_ari[0].reply = (201, recording, "application/json")

    result = await rest.record("channel", "c1", "vm-1", max_duration_seconds=120, beep=True)
    await rest.stop_recording("vm-1")

    first, second = fake_ari[0].seen
    assert result.state == "queued"
    assert first.raw_path == "/ari/channels/c1/record"
    assert first.query == {
        "name": "vm-1",
        "format": "wav",
        "maxDurationSeconds": "120",
        "ifExists": "fail",
        "beep": "true",
    }
    assert (second.method, second.raw_path) == ("POST", "/ari/recordings/live/vm-1/stop")
