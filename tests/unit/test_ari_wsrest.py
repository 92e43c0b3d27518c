"""REST over the event websocket: the frames, matching answers to requests, timeouts, a dropped
socket, the stall guard, and which requests AriRestClient keeps on HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import test_utils
from websockets.exceptions import ConnectionClosedError

from callkeeper.ari.errors import (
    AriConflict,
    AriError,
    AriNotFound,
    AriUnavailable,
    AriUnprocessable,
    is_retryable,
)
from callkeeper.ari.wsrest import (
    EventSocketRequests,
    PendingRequests,
    Reply,
    decode_reply,
    encode_request,
)
from tests.ari_rest import AriClientForTests
from tests.fake_ari import FakeAri
from tests.unit.test_ari_rest import CHANNEL, config_for


class FakeSocket:
    """Records the frames sent; the test answers them through `EventSocketRequests.on_response`."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.sent = asyncio.Event()
        self.failure: Exception | None = None

    async def send(self, frame: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.frames.append(json.loads(frame))
        self.sent.set()

    async def next_frame(self, count: int) -> dict[str, Any]:
        async with asyncio.timeout(2):
            while len(self.frames) < count:
                self.sent.clear()
                await self.sent.wait()
        return self.frames[count - 1]


def response(request_id: str, status: int = 200, body: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "RESTResponse",
        "transaction_id": "",
        "request_id": request_id,
        "status_code": status,
        "reason_phrase": "whatever",
        "uri": "x",
    }
    if body is not None:
        message["content_type"] = "application/json"
        message["message_body"] = json.dumps(body)
    return message


async def attached(
    timeout: float = 2.0,  # noqa: ASYNC109 - the lane's request timeout
    stall: float = 0.25,
) -> tuple[EventSocketRequests, FakeSocket]:
    requests, socket = EventSocketRequests(timeout, stall), FakeSocket()
    await requests.attach(socket.send)
    probe = socket.frames[0]
    assert probe["method"] == "GET"
    assert probe["uri"] == "asterisk/ping"
    assert not requests.usable
    requests.on_response(response(probe["request_id"], 200, {"ping": "pong"}))
    assert requests.usable
    return requests, socket


def test_request_frame_carries_query_strings_and_a_json_body() -> None:
    body = {"variables": {"A": "b c"}}
    frame = json.loads(encode_request("7", "POST", "/channels/create", {"endpoint": "PJSIP/alice"}, body))
    assert json.loads(frame.pop("message_body")) == body
    assert frame == {
        "type": "RESTRequest",
        "request_id": "7",
        "method": "POST",
        "uri": "channels/create",
        "query_strings": [{"name": "endpoint", "value": "PJSIP/alice"}],
        "content_type": "application/json",
    }
    assert json.loads(encode_request("8", "GET", "/asterisk/info", None, None)) == {
        "type": "RESTRequest",
        "request_id": "8",
        "method": "GET",
        "uri": "asterisk/info",
    }


def test_reply_decoding() -> None:
    assert decode_reply(response("3", 404, {"message": "Channel not found"})) == (
        "3",
        Reply(404, "application/json", '{"message": "Channel not found"}'),
    )
    assert decode_reply(response("4", 204)) == ("4", Reply(204, None, ""))
    assert decode_reply({"type": "RESTResponse", "request_id": "", "status_code": "400"}) is None
    assert decode_reply({"type": "RESTResponse", "status_code": 400}) is None


async def test_pending_requests_match_by_id_in_any_order() -> None:
    pending = PendingRequests()
    first = pending.open("1", "GET", "/a", now=10.0)
    second = pending.open("2", "GET", "/b", now=11.0)
    assert pending.oldest_age(12.0) == 2.0
    assert pending.settle("2", Reply(200, None, "b"))
    assert not first.done()
    assert second.result().body == "b"
    assert not pending.settle("2", Reply(200, None, "again"))
    assert not pending.settle("nobody", Reply(200, None, ""))
    assert pending.settle("1", Reply(204, None, ""))
    assert first.result().status == 204
    assert len(pending) == 0
    assert pending.oldest_age(99.0) == 0.0


async def test_an_abandoned_request_stays_until_its_answer_comes() -> None:
    pending = PendingRequests()
    future = pending.open("1", "POST", "/channels/c1/answer", now=0.0)
    pending.abandon("1")
    assert len(pending) == 1
    assert pending.oldest_age(5.0) == 5.0
    assert pending.settle("1", Reply(204, None, ""))
    assert not future.done()
    assert len(pending) == 0


async def test_failing_all_tells_each_waiting_caller_its_own_request() -> None:
    pending = PendingRequests()
    answer = pending.open("1", "POST", "/channels/c1/answer", now=0.0)
    gone = pending.open("2", "GET", "/bridges/b1", now=0.0)
    pending.abandon("2")
    pending.fail_all(lambda method, path: AriUnavailable(None, method, path, "dropped"))
    assert len(pending) == 0
    error = answer.exception()
    assert isinstance(error, AriUnavailable)
    assert (error.method, error.path) == ("POST", "/channels/c1/answer")
    assert not gone.done()


async def test_round_trip_returns_the_json_answer() -> None:
    requests, socket = await attached()
    task = asyncio.create_task(requests.request("GET", "/channels/c1", None, None))
    frame = await socket.next_frame(2)
    assert (frame["method"], frame["uri"]) == ("GET", "channels/c1")
    requests.on_response(response(frame["request_id"], 200, CHANNEL))
    assert await task == CHANNEL

    task = asyncio.create_task(requests.request("DELETE", "/channels/c1", {"reason": "busy"}, None))
    frame = await socket.next_frame(3)
    assert frame["query_strings"] == [{"name": "reason", "value": "busy"}]
    requests.on_response(response(frame["request_id"], 204))
    assert await task is None
    assert requests.sent == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(404, AriNotFound), (409, AriConflict), (422, AriUnprocessable), (400, AriError), (500, AriUnavailable)],
)
async def test_statuses_map_to_the_same_errors_as_http(status: int, error_type: type[AriError]) -> None:
    requests, socket = await attached()
    task = asyncio.create_task(requests.request("POST", "/channels/c1/dial", None, None))
    frame = await socket.next_frame(2)
    requests.on_response(response(frame["request_id"], status, {"message": "Channel not found"}))
    with pytest.raises(error_type) as caught:
        await task
    assert type(caught.value) is error_type
    assert (caught.value.status, caught.value.path) == (status, "/channels/c1/dial")
    if status < 500:
        assert caught.value.message == "Channel not found"


async def test_answers_are_matched_to_their_requests() -> None:
    requests, socket = await attached()
    first = asyncio.create_task(requests.request("GET", "/bridges/b1", None, None))
    second = asyncio.create_task(requests.request("GET", "/bridges/b2", None, None))
    await socket.next_frame(3)
    ids = {frame["uri"]: frame["request_id"] for frame in socket.frames[1:]}
    requests.on_response(response(ids["bridges/b2"], 200, {"id": "b2"}))
    requests.on_response(response("not-ours", 200, {"id": "x"}))
    requests.on_response({"type": "RESTResponse", "status_code": 400})
    requests.on_response(response(ids["bridges/b1"], 200, {"id": "b1"}))
    assert await first == {"id": "b1"}
    assert await second == {"id": "b2"}


async def test_no_answer_times_out_and_the_socket_takes_no_requests_until_it_answers() -> None:
    requests, socket = await attached(timeout=0.05, stall=0.02)
    with pytest.raises(AriUnavailable, match="timed out") as caught:
        await requests.request("POST", "/channels/c1/answer", None, None)
    assert is_retryable(caught.value)
    assert not requests.usable  # Asterisk is still busy with it: new requests go over HTTP

    requests.on_response(response(socket.frames[1]["request_id"], 204))
    assert requests.usable


async def test_a_socket_stuck_behind_a_slow_request_is_bypassed() -> None:
    requests, socket = await attached(stall=0.05)
    slow = asyncio.create_task(requests.request("POST", "/bridges/b1/addChannel", None, None))
    await socket.next_frame(2)
    assert requests.usable
    await asyncio.sleep(0.08)
    assert not requests.usable
    requests.on_response(response(socket.frames[1]["request_id"], 204))
    assert await slow is None
    assert requests.usable


async def test_requests_in_flight_fail_retryable_when_the_socket_drops() -> None:
    requests, socket = await attached()
    waiting = [asyncio.create_task(requests.request("GET", f"/channels/c{n}", None, None)) for n in range(3)]
    await socket.next_frame(4)
    requests.detach()
    for task in waiting:
        with pytest.raises(AriUnavailable, match="event socket closed") as caught:
            await task
        assert is_retryable(caught.value)
    assert not requests.usable
    with pytest.raises(AriUnavailable, match="not connected"):
        await requests.request("GET", "/channels/c1", None, None)

    # A late answer from the old socket is ignored; the next socket needs its own probe.
    requests.on_response(response(socket.frames[1]["request_id"], 200, CHANNEL))
    await requests.attach(socket.send)
    assert not requests.usable


async def test_a_refused_probe_keeps_requests_on_http() -> None:
    requests, socket = EventSocketRequests(2.0), FakeSocket()
    await requests.attach(socket.send)
    requests.on_response(response(socket.frames[0]["request_id"], 405, {"message": "Invalid method"}))
    assert not requests.usable


async def test_a_failed_send_is_unavailable_and_leaves_nothing_behind() -> None:
    requests, socket = await attached(stall=0.01)
    socket.failure = ConnectionClosedError(None, None)
    with pytest.raises(AriUnavailable) as caught:
        await requests.request("GET", "/channels/c1", None, None)
    assert caught.value.status is None
    await asyncio.sleep(0.02)
    assert requests.usable  # nothing left that would look like a stalled request


async def test_a_cancelled_caller_leaves_no_waiting_future() -> None:
    requests, socket = await attached()
    task = asyncio.create_task(requests.request("GET", "/channels/c1", None, None))
    await socket.next_frame(2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    requests.on_response(response(socket.frames[1]["request_id"], 200, CHANNEL))
    requests.detach()


# ---------------------------------------------------------------- which requests AriRestClient sends where


async def answer_next(requests: EventSocketRequests, socket: FakeSocket, count: int, body: Any) -> None:
    frame = await socket.next_frame(count)
    requests.on_response(response(frame["request_id"], 200 if body is not None else 204, body))


async def test_rest_client_uses_the_socket_except_for_requests_that_wait_for_a_channel(
    fake_ari: tuple[FakeAri, test_utils.TestServer],
) -> None:
    fake, server = fake_ari
    requests, socket = await attached()
    async with AriClientForTests(config_for(server.port or 0)) as rest:
        rest.use_event_socket(requests)

        answering = asyncio.create_task(answer_next(requests, socket, 2, CHANNEL))
        assert (await rest.get_channel("c1")).id == "c1"
        await answering
        answering = asyncio.create_task(answer_next(requests, socket, 3, None))
        await rest.hangup("c1", "busy")
        await answering
        assert [(frame["method"], frame["uri"]) for frame in socket.frames[1:]] == [
            ("GET", "channels/c1"),
            ("DELETE", "channels/c1"),
        ]
        assert fake.seen == []

        await rest.answer("c1")
        await rest.add_channel("b1", "c1")
        await rest.remove_channel("b1", "c1")
        await rest.hangup("odd/id")  # a quoted path: Asterisk does not decode websocket paths
        requests.detach()
        await rest.hangup("c1")
        assert [(seen.method, seen.raw_path) for seen in fake.seen] == [
            ("POST", "/ari/channels/c1/answer"),
            ("POST", "/ari/bridges/b1/addChannel"),
            ("POST", "/ari/bridges/b1/removeChannel"),
            ("DELETE", "/ari/channels/odd%2Fid"),
            ("DELETE", "/ari/channels/c1"),
        ]
        assert len(socket.frames) == 3
