"""Prometheus metrics: the daemon's snapshot rendered in the text exposition format 0.0.4."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from callkeeper.api.openapi import OUTBOX_STATUSES, PRESENCE_STATES
from callkeeper.live import Histogram, MetricsSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


Labels = tuple[tuple[str, str], ...]


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


class _Exposition:
    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Labels = ()) -> None:
        if labels:
            rendered = ",".join(f'{key}="{escape_label_value(val)}"' for key, val in labels)
            self._lines.append(f"{name}{{{rendered}}} {format_value(value)}")
        else:
            self._lines.append(f"{name} {format_value(value)}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)

    def by_label(
        self, name: str, kind: str, help_text: str, label: str, values: Iterable[tuple[str, float]]
    ) -> None:
        self.family(name, kind, help_text)
        for key, value in sorted(values):
            self.sample(name, value, ((label, key),))

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self.family(name, "histogram", help_text)
        for bound, count in histogram.buckets:
            self.sample(f"{name}_bucket", count, (("le", format_value(bound)),))
        self.sample(f"{name}_bucket", histogram.count, (("le", "+Inf"),))
        self.sample(f"{name}_sum", histogram.sum)
        self.sample(f"{name}_count", histogram.count)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _with_all(known: tuple[str, ...], values: Mapping[str, int]) -> dict[str, int]:
    return {key: 0 for key in known} | dict(values)


def render_metrics(snapshot: MetricsSnapshot, outbox_depth: Mapping[str, int] | None) -> str:
    """The exposition text; the outbox depth family is left out when the store could not be read."""
    out = _Exposition()
    out.family("callkeeper_calls_total", "counter", "Calls that ended, by line, outcome and reason.")
    for (line, outcome, reason), count in sorted(snapshot.calls_total.items()):
        out.sample(
            "callkeeper_calls_total", count, (("line", line), ("outcome", outcome), ("reason", reason))
        )
    out.single("callkeeper_calls_in_progress", "gauge", "Calls not ended yet.", snapshot.calls_in_progress)
    out.by_label(
        "callkeeper_queue_waiting",
        "gauge",
        "Callers waiting in the queue of a ring group.",
        "group",
        snapshot.queue_waiting.items(),
    )
    out.by_label(
        "callkeeper_queue_longest_wait_seconds",
        "gauge",
        "How long the longest waiting caller of a ring group's queue has waited.",
        "group",
        snapshot.queue_longest_wait_seconds.items(),
    )
    out.by_label(
        "callkeeper_users",
        "gauge",
        "Users by presence state.",
        "state",
        _with_all(PRESENCE_STATES, snapshot.users).items(),
    )
    out.single(
        "callkeeper_ari_connected",
        "gauge",
        "1 while the ARI websocket is connected.",
        int(snapshot.ari_connected),
    )
    out.single(
        "callkeeper_ari_reconnects_total",
        "counter",
        "Times the ARI websocket was connected again after a loss.",
        snapshot.ari_reconnects_total,
    )
    out.histogram(
        "callkeeper_event_lag_seconds",
        "Delay between an ARI event's timestamp and its handling.",
        snapshot.event_lag_seconds,
    )
    if outbox_depth is not None:
        out.by_label(
            "callkeeper_outbox_depth",
            "gauge",
            "Outbox items (texts and webhooks) by status.",
            "status",
            _with_all(OUTBOX_STATUSES, outbox_depth).items(),
        )
    out.single(
        "callkeeper_outbox_failures_total",
        "counter",
        "Failed delivery attempts of outbox items.",
        snapshot.outbox_failures_total,
    )
    out.single("callkeeper_texts_sent_total", "counter", "Follow-up texts sent.", snapshot.texts_sent_total)
    out.single(
        "callkeeper_webhooks_sent_total", "counter", "Webhooks delivered.", snapshot.webhooks_sent_total
    )
    return out.text()
