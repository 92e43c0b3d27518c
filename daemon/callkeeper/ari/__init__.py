"""Our thin typed ARI client: REST calls, typed events and the reconnecting event stream."""

from callkeeper.ari.backoff import Backoff, ExponentialBackoff
from callkeeper.ari.connection import AriConnection, ConnectionState
from callkeeper.ari.errors import (
    AriAuthError,
    AriConflict,
    AriError,
    AriNotFound,
    AriUnavailable,
    AriUnprocessable,
    is_retryable,
)
from callkeeper.ari.events import AriEvent, MalformedEvent, UnknownEvent, parse_event
from callkeeper.ari.rest import AriRestClient

__all__ = [
    "AriAuthError",
    "AriConflict",
    "AriConnection",
    "AriError",
    "AriEvent",
    "AriNotFound",
    "AriRestClient",
    "AriUnavailable",
    "AriUnprocessable",
    "Backoff",
    "ConnectionState",
    "ExponentialBackoff",
    "MalformedEvent",
    "UnknownEvent",
    "is_retryable",
    "parse_event",
]
