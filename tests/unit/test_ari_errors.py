"""The status/exception -> typed error mapping and the retryable-or-fatal table."""

from __future__ import annotations

import aiohttp
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.http11 import Response

from callkeeper.ari.errors import (
    RETRYABLE,
    AriAuthError,
    AriConflict,
    AriError,
    AriNotFound,
    AriUnavailable,
    AriUnprocessable,
    error_from_exception,
    error_from_response,
    is_retryable,
)

JSON = "application/json"


@pytest.mark.parametrize(
    ("status", "content_type", "expected", "retryable"),
    [
        (400, JSON, AriError, False),
        (401, JSON, AriAuthError, False),
        (403, JSON, AriAuthError, False),
        (404, JSON, AriNotFound, False),
        (409, JSON, AriConflict, False),
        (422, JSON, AriUnprocessable, False),
        (500, JSON, AriUnavailable, True),
        (503, "text/html", AriUnavailable, True),
        (404, "text/html", AriUnavailable, True),
        (404, None, AriUnavailable, True),
    ],
)
def test_status_table(
    status: int, content_type: str | None, expected: type[AriError], retryable: bool
) -> None:
    error = error_from_response(
        status, "GET", "/channels/c1", b'{"message":"Channel not found"}', content_type
    )

    assert type(error) is expected
    assert error.status == status
    assert (error.method, error.path) == ("GET", "/channels/c1")
    assert is_retryable(error) is retryable


def test_every_error_type_is_in_the_table() -> None:
    assert set(RETRYABLE) == {AriError, *AriError.__subclasses__()}


def test_message_comes_from_the_json_body() -> None:
    error = error_from_response(
        409, "POST", "/channels/c1/continue", b'{"message":"Channel not in Stasis application"}', JSON
    )

    assert error.message == "Channel not in Stasis application"
    assert str(error) == "POST /channels/c1/continue: 409: Channel not in Stasis application"


def test_body_without_message_falls_back_to_the_status() -> None:
    assert error_from_response(500, "POST", "/channels", b'{"error":"Allocation failed"}', JSON).message == (
        "server error"
    )
    assert error_from_response(418, "GET", "/x", b"not json", JSON).message == "HTTP 418"


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("truncated"),
        ConnectionClosedError(None, None),
    ],
)
def test_transport_failures_are_retryable(exc: BaseException) -> None:
    error = error_from_exception(exc, "GET", "/events")

    assert isinstance(error, AriUnavailable)
    assert error.status is None
    assert is_retryable(error)


def test_refused_websocket_handshake_uses_the_status_table() -> None:
    response = Response(
        401, "Unauthorized", Headers({"Content-Type": JSON}), b'{"message":"Authentication required"}'
    )

    error = error_from_exception(InvalidStatus(response), "GET", "/events")

    assert isinstance(error, AriAuthError)
    assert error.message == "Authentication required"
    assert not is_retryable(error)


def test_an_ari_error_passes_through() -> None:
    original = AriNotFound(404, "GET", "/x", "gone")

    assert error_from_exception(original, "GET", "/x") is original


def test_other_exceptions_are_not_transport_errors() -> None:
    with pytest.raises(TypeError):
        error_from_exception(KeyError("x"), "GET", "/x")
