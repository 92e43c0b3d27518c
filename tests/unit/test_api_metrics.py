"""The Prometheus text exposition, read back by a small parser of format 0.0.4."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import pytest

from callkeeper.api.metrics import escape_label_value, format_value, render_metrics
from callkeeper.live import Histogram
from tests.unit.test_api_fakes import snapshot

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^(?P<name>{NAME})(?:\{{(?P<labels>.*)\}})? (?P<value>\S+)$")
LABEL = re.compile(rf'(?P<key>{NAME})="(?P<value>(?:[^"\\]|\\.)*)"(?:,|$)')
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


@dataclass
class Family:
    kind: str = ""
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    found = list(LABEL.finditer(text))
    assert "".join(m.group(0) for m in found) == text, f"bad label set {text!r}"
    return {m.group("key"): _unescape(m.group("value")) for m in found}


def parse(text: str) -> dict[str, Family]:
    """Families by name; asserts what a Prometheus scraper would reject."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            assert name not in families, f"{name} described twice"
            families[name] = Family(help=_unescape(help_text))
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            assert name == current and not families[name].samples
            assert kind in SUFFIXES
            families[name].kind = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"bad sample line {line!r}"
            assert current is not None
            family = families[current]
            suffix = match.group("name")[len(current) :]
            assert match.group("name").startswith(current) and suffix in SUFFIXES[family.kind], line
            family.samples.append(
                (match.group("name"), _labels(match.group("labels")), float(match.group("value")))
            )
    return families


def test_every_family_is_typed_and_described() -> None:
    families = parse(render_metrics(snapshot(), {"pending": 2}))
    assert set(families) == {
        "callkeeper_calls_total",
        "callkeeper_calls_in_progress",
        "callkeeper_queue_waiting",
        "callkeeper_queue_longest_wait_seconds",
        "callkeeper_users",
        "callkeeper_ari_connected",
        "callkeeper_ari_reconnects_total",
        "callkeeper_event_lag_seconds",
        "callkeeper_outbox_depth",
        "callkeeper_outbox_failures_total",
        "callkeeper_texts_sent_total",
        "callkeeper_webhooks_sent_total",
    }
    for name, family in families.items():
        assert family.help and family.kind, name
        if family.kind == "counter":
            assert name.endswith("_total")


def test_values() -> None:
    families = parse(render_metrics(snapshot(), {"pending": 2, "sent": 7}))

    def values(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(labels.items())): value for _, labels, value in families[name].samples}

    assert values("callkeeper_calls_total") == {
        (("line", "sales"), ("outcome", "answered"), ("reason", "answered")): 5,
        (("line", "sales"), ("outcome", "missed"), ("reason", "ring_group_no_answer")): 3,
    }
    assert values("callkeeper_calls_in_progress") == {(): 2}
    assert values("callkeeper_queue_waiting") == {(("group", "support"),): 1}
    assert values("callkeeper_queue_longest_wait_seconds") == {(("group", "support"),): 12.5}
    assert values("callkeeper_users") == {
        (("state", "available"),): 1,
        (("state", "away"),): 0,
        (("state", "dnd"),): 0,
        (("state", "busy"),): 1,
        (("state", "offline"),): 0,
    }
    assert values("callkeeper_ari_connected") == {(): 1}
    assert values("callkeeper_ari_reconnects_total") == {(): 4}
    assert values("callkeeper_outbox_depth") == {
        (("status", status),): {"pending": 2, "sent": 7}.get(status, 0)
        for status in ("pending", "sending", "sent", "failed", "held", "cancelled")
    }
    assert values("callkeeper_outbox_failures_total") == {(): 6}
    assert values("callkeeper_texts_sent_total") == {(): 7}
    assert values("callkeeper_webhooks_sent_total") == {(): 8}


def test_the_histogram_is_cumulative_and_ends_at_inf() -> None:
    samples = parse(render_metrics(snapshot(), None))["callkeeper_event_lag_seconds"].samples
    buckets = [(labels["le"], value) for name, labels, value in samples if name.endswith("_bucket")]
    assert buckets == [("0.01", 90), ("0.1", 99), ("1", 100), ("+Inf", 101)]
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)
    totals = {name: value for name, _, value in samples if not name.endswith("_bucket")}
    assert totals == {"callkeeper_event_lag_seconds_sum": 0.75, "callkeeper_event_lag_seconds_count": 101}


def test_an_empty_histogram_and_no_calls_yet() -> None:
    empty = replace(snapshot(), calls_total={}, event_lag_seconds=Histogram(buckets=(), sum=0.0, count=0))
    families = parse(render_metrics(empty, None))
    assert families["callkeeper_calls_total"].samples == []
    assert families["callkeeper_event_lag_seconds"].samples == [
        ("callkeeper_event_lag_seconds_bucket", {"le": "+Inf"}, 0),
        ("callkeeper_event_lag_seconds_sum", {}, 0),
        ("callkeeper_event_lag_seconds_count", {}, 0),
    ]


def test_without_the_store_the_outbox_depth_is_left_out() -> None:
    assert "callkeeper_outbox_depth" not in parse(render_metrics(snapshot(), None))


@pytest.mark.parametrize(
    "line", ['say "hi"', "back\\slash", "two\nlines", "ünïcode", "\\n literally", 'end\\"']
)
def test_label_values_are_escaped_and_read_back(line: str) -> None:
    text = render_metrics(replace(snapshot(), calls_total={(line, "missed", "failure"): 1}), None)
    (sample,) = parse(text)["callkeeper_calls_total"].samples
    assert sample[1]["line"] == line


@pytest.mark.parametrize(
    ("raw", "escaped"), [('a"b', 'a\\"b'), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb"), ("plain", "plain")]
)
def test_escape_label_value(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (2.0, "2"),
        (0.25, "0.25"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (True, "1"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text
