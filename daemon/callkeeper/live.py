"""What the live daemon tells the HTTP API (callers waiting in queues, the metrics snapshot) and
why it refuses a dialer call. The shell (`service/`) fills these in and the API (`api/`) serves
them; neither imports the other."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueuedCaller:
    call_id: str
    caller: str
    waiting_seconds: float


class Refusal(enum.Enum):
    UNKNOWN = "unknown"  # no such line, user or ring group
    NOT_DIALABLE = "not_dialable"  # not a valid number of the line's countries
    NOBODY_FREE = "nobody_free"


class DialerRejected(Exception):
    """The dialer cannot place this call, for `why`."""

    def __init__(self, why: Refusal, message: str) -> None:
        super().__init__(message)
        self.why = why


@dataclass(frozen=True, slots=True)
class Histogram:
    """Observations so far: `buckets` are (upper bound, observations <= bound) pairs, bounds ascending and
    counts cumulative; the `+Inf` bucket is `count`."""

    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What the daemon counts, read at one moment. Counters only ever grow while the process lives.

    `calls_total` is keyed by (line, outcome, reason); a call without a line uses line "".
    The outbox depth is not here: `/metrics` asks the store for it (`CallHistory.outbox_depth`).
    """

    calls_total: Mapping[tuple[str, str, str], int]
    calls_in_progress: int
    queue_waiting: Mapping[str, int]
    queue_longest_wait_seconds: Mapping[str, float]
    users: Mapping[str, int]
    ari_connected: bool
    ari_reconnects_total: int
    event_lag_seconds: Histogram
    outbox_failures_total: int
    texts_sent_total: int
    webhooks_sent_total: int
