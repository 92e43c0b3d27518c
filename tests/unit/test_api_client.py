"""The CLI's side of the API: fetching calls from a real local server and the table it prints."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer

from callkeeper.api.client import ApiClientError, fetch_calls, format_calls_table
from callkeeper.api.server import build_app
from callkeeper.config.model import Secret
from callkeeper.records import Outcome
from tests.unit.test_api_fakes import HTTP, TOKEN, FakeHistory, call, fakes, rich_call

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def history() -> FakeHistory:
    return fakes()[0]


@pytest.fixture
async def base_url(history: FakeHistory) -> AsyncIterator[str]:
    async with TestServer(build_app(history, fakes()[1], HTTP)) as test_server:
        yield str(test_server.make_url("/"))


async def test_fetch_calls(base_url: str, history: FakeHistory) -> None:
    calls = await fetch_calls(base_url, Secret(TOKEN))
    assert calls == [history.calls[i].to_json() for i in ("1714982400.3", "1714982400.2", "1714982400.1")]
    assert history.queries == [{"limit": 50, "since": None, "line": None, "outcome": None}]


@pytest.mark.parametrize(
    "since",
    [
        datetime(2024, 5, 6, 10, 5, tzinfo=BERLIN),
        datetime(2024, 5, 6, 8, 5),
        datetime(2024, 5, 6, 8, 5, tzinfo=UTC),
    ],
)
async def test_fetch_calls_passes_the_filters(base_url: str, history: FakeHistory, since: datetime) -> None:
    calls = await fetch_calls(base_url, TOKEN, 7, since, "sales", "answered")
    assert [c["id"] for c in calls] == ["1714982400.3"]
    assert history.queries == [
        {"limit": 7, "since": datetime(2024, 5, 6, 8, 5, tzinfo=UTC), "line": "sales", "outcome": "answered"}
    ]


@pytest.mark.parametrize("since", ["2024-05-06T10:05:00+02:00", "2024-05-06T08:05:00", "2024-05-06T08:05Z"])
async def test_since_may_be_text_as_typed(base_url: str, history: FakeHistory, since: str) -> None:
    await fetch_calls(base_url, TOKEN, since=since)
    assert history.queries[-1]["since"] == datetime(2024, 5, 6, 8, 5, tzinfo=UTC)


async def test_text_that_is_no_time_is_explained(base_url: str) -> None:
    with pytest.raises(ApiClientError, match="400: invalid since"):
        await fetch_calls(base_url, TOKEN, since="last tuesday")


async def test_a_wrong_token_is_an_error_without_the_token(base_url: str) -> None:
    with pytest.raises(ApiClientError, match="401: invalid token") as raised:
        await fetch_calls(base_url, "not-" + TOKEN)
    assert TOKEN not in str(raised.value)
    with pytest.raises(ApiClientError, match="401: authentication required"):
        await fetch_calls(base_url, None)


async def test_a_refused_filter_is_explained(base_url: str) -> None:
    with pytest.raises(ApiClientError, match=r"400: invalid outcome \(.*answered"):
        await fetch_calls(base_url, TOKEN, outcome="lost")


async def test_an_unreachable_daemon_is_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ApiClientError, match="cannot reach callkeeper"):
        await fetch_calls(f"http://127.0.0.1:{port}", TOKEN, timeout_seconds=2)


def test_the_table() -> None:
    lines = format_calls_table(
        [rich_call("c3").to_json(), call("c1", seconds=3725).to_json(), call("c2", outcome=None).to_json()],
        BERLIN,
    ).splitlines()
    assert lines[0].split() == [
        "STARTED",
        "LINE",
        "CALLER",
        "DIALED",
        "OUTCOME",
        "REASON",
        "SHORT",
        "ANSWERED_BY",
        "DURATION",
        "WHY",
    ]
    columns = [lines[0].index(name) for name in ("LINE", "CALLER", "OUTCOME", "DURATION")]
    for line in lines[1:]:
        assert all(line[at - 2 : at] == "  " for at in columns), line
    assert lines[1][: lines[0].index("WHY")].split() == [
        "2024-05-06",
        "10:30",
        "sales",
        "+4930111111",
        "+4930222222",
        "answered",
        "voicemail",
        "yes",
        "alice",
        "0:42",
    ]
    assert lines[1].endswith("sent to voicemail")
    assert lines[2].split()[-11:] == [
        "missed",
        "ring_group_no_answer",
        "-",
        "-",
        "1:02:05",
        *["nobody", "in", "the", "ring", "group", "answered"],
    ]
    assert lines[3].split()[-7:] == ["in", "progress", "-", "-", "-", "-", "-"]


def test_start_times_are_local() -> None:
    record = call("c1").to_json()
    assert (
        format_calls_table([record], ZoneInfo("America/New_York"))
        .splitlines()[1]
        .startswith("2024-05-06 04:00")
    )
    assert format_calls_table([record], UTC).splitlines()[1].startswith("2024-05-06 08:00")


def test_no_calls() -> None:
    assert format_calls_table([]) == "no calls\n"


def test_outside_text_cannot_drive_the_terminal() -> None:
    record = call("c1", line=None, outcome=Outcome.ABANDONED).to_json() | {"caller": "\x1b[2J+49\r\n"}
    row = format_calls_table([record], BERLIN).splitlines()[1]
    assert "\x1b" not in row
    assert "?[2J+49??" in row
    assert row.split()[2] == "-"


def test_odd_records_still_print() -> None:
    text = format_calls_table(
        [{"id": "x"}, {"started_at": "not a time", "ended_at": 5, "short": "yes"}], BERLIN
    )
    assert len(text.splitlines()) == 3
