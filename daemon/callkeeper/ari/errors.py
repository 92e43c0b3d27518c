"""Typed ARI failures and the one table that says which of them are worth retrying."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import aiohttp
from websockets.exceptions import InvalidStatus, WebSocketException


class AriError(Exception):
    """A failed ARI request. `status` is the HTTP status, None when no response came back."""

    def __init__(self, status: int | None, method: str, path: str, message: str) -> None:
        super().__init__(status, method, path, message)
        self.status = status
        self.method = method
        self.path = path
        self.message = message

    def __str__(self) -> str:
        status = "no response" if self.status is None else str(self.status)
        return f"{self.method} {self.path}: {status}: {self.message}"


class AriNotFound(AriError):
    """404: the channel, bridge, playback... is gone. A normal branch for callers."""


class AriConflict(AriError):
    """409: the resource is in the wrong state (e.g. channel not in our Stasis app)."""


class AriUnprocessable(AriError):
    """422: a referenced resource (endpoint, bridge, recording) does not exist."""


class AriAuthError(AriError):
    """401/403: wrong credentials or ari.conf. Retrying cannot help."""


class AriUnavailable(AriError):
    """Asterisk cannot answer now: refused, timed out, 5xx, or ARI not loaded yet."""


STATUS_ERRORS: Final[Mapping[int, type[AriError]]] = MappingProxyType(
    {
        401: AriAuthError,
        403: AriAuthError,
        404: AriNotFound,
        409: AriConflict,
        422: AriUnprocessable,
    }
)

# What the connection does with a failure: True = back off and retry, False = fatal.
RETRYABLE: Final[Mapping[type[AriError], bool]] = MappingProxyType(
    {
        AriUnavailable: True,
        AriAuthError: False,
        AriNotFound: False,
        AriConflict: False,
        AriUnprocessable: False,
        AriError: False,  # 400 and other statuses: a request we build wrong stays wrong
    }
)

# Transport failures, whatever library raised them, mean "Asterisk is not there right now".
TRANSPORT_ERRORS: Final = (OSError, TimeoutError, aiohttp.ClientError, WebSocketException)


def is_retryable(error: AriError) -> bool:
    return RETRYABLE[type(error)]


def error_from_response(
    status: int, method: str, path: str, body: bytes | bytearray | str, content_type: str | None
) -> AriError:
    is_json = content_type is not None and content_type.startswith("application/json")
    message = _message(body) if is_json else ""
    if status == 404 and not is_json:
        # ARI answers every 404 with JSON; an HTML one comes from Asterisk's HTTP server
        # while res_ari is not loaded yet (startup) or when the URL misses the ARI prefix.
        return AriUnavailable(status, method, path, "ARI is not loaded (yet) at this URL")
    if status >= 500:
        return AriUnavailable(status, method, path, message or "server error")
    return STATUS_ERRORS.get(status, AriError)(status, method, path, message or f"HTTP {status}")


def error_from_exception(exc: BaseException, method: str, path: str) -> AriError:
    """Maps a transport exception (see TRANSPORT_ERRORS) or a refused websocket handshake."""
    if isinstance(exc, AriError):
        return exc
    if isinstance(exc, InvalidStatus):
        response = exc.response
        return error_from_response(
            response.status_code, method, path, response.body or b"", response.headers.get("Content-Type")
        )
    if isinstance(exc, TRANSPORT_ERRORS):
        return AriUnavailable(None, method, path, _describe(exc))
    raise TypeError(f"not a transport error: {exc!r}") from exc


def _message(body: bytes | bytearray | str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
