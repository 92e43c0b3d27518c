"""Counters the shell keeps for /metrics."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from callkeeper.live import Histogram
from callkeeper.records import CallRecord

LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


@dataclass(slots=True)
class LagHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(LAG_BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(LAG_BUCKETS, seconds)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += seconds
        self.count += 1

    def snapshot(self) -> Histogram:
        cumulative, running = [], 0
        for bound, hits in zip(LAG_BUCKETS, self.counts, strict=True):
            running += hits
            cumulative.append((bound, running))
        return Histogram(tuple(cumulative), self.total, self.count)


@dataclass(slots=True)
class CallCounters:
    verdicts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    event_lag: LagHistogram = field(default_factory=LagHistogram)

    def count_verdict(self, record: CallRecord) -> None:
        if record.outcome is not None and record.reason is not None:
            self.verdicts[(record.line or "", record.outcome.value, record.reason.value)] += 1
