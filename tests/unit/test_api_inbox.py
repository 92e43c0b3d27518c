"""The inbox, voicemail, report and CSV routes of the HTTP API, over a real inbox on an in-memory store."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callkeeper.api.server import build_app, calls_csv
from callkeeper.followups.service import FollowupService
from callkeeper.inbox.service import InboxService
from callkeeper.records import Followup, Outcome, Reason
from callkeeper.service.control import CallHistoryWithFollowups
from callkeeper.store import OutboxItem, OutboxKind
from tests.unit.test_api_fakes import AUTH, HTTP, T0, FakeControl, FakeHistory, call, fakes, open_inbox
from tests.unit.test_inbox import CALLER, leave_message, missed_call

Client = TestClient[Any, Any]


@pytest.fixture
async def inbox(tmp_path: Path) -> AsyncIterator[tuple[InboxService, FakeControl]]:
    control = FakeControl()
    service = await open_inbox(control, str(tmp_path))
    yield service, control
    await service.store.close()


@pytest.fixture
def history() -> FakeHistory:
    return fakes()[0]


@pytest.fixture
async def client(inbox: tuple[InboxService, FakeControl], history: FakeHistory) -> AsyncIterator[Client]:
    service, control = inbox
    async with TestClient(TestServer(build_app(history, control, HTTP, service))) as test_client:
        yield test_client


async def request(client: Client, method: str, path: str, status: int, **kwargs: Any) -> Any:
    headers = AUTH | kwargs.pop("headers", {})
    async with client.request(method, path, headers=headers, **kwargs) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def test_list_and_get_items(client: Client, inbox: tuple[InboxService, FakeControl]) -> None:
    service, _ = inbox
    await service.store.save_call(missed_call("c1"))
    await service.store.save_call(missed_call("c2", minute=1, caller="+4930555555", short=True))
    body = await request(client, "GET", "/api/v1/inbox", 200)
    assert [item["call_id"] for item in body["items"]] == ["c1"]
    (item,) = body["items"]
    assert (item["caller"], item["line"], item["state"], item["attempts"], item["reason_text"]) == (
        CALLER,
        "sales",
        "open",
        1,
        "Sent to voicemail",
    )
    assert item["voicemail"] == {"call_id": "c1", "seconds": 7, "mailbox": "1000@default"}
    shown = await request(client, "GET", "/api/v1/inbox?show_short_abandons=true&line=sales&limit=10", 200)
    assert [i["call_id"] for i in shown["items"]] == ["c2", "c1"]
    assert (await request(client, "GET", "/api/v1/inbox?state=handled", 200)) == {"items": []}
    assert (await request(client, "GET", "/api/v1/inbox/c1", 200))["call_ids"] == ["c1"]
    await request(client, "GET", "/api/v1/inbox/nope", 404)


@pytest.mark.parametrize(
    "query",
    [
        "state=closed",
        "limit=0",
        "limit=10001",
        "limit=x",
        "outcome=lost",
        "reason=because",
        "from=yesterday",
        "number=abc",
        "show_ignored=yes",
        "colour=red",
        "line=a&line=b",
    ],
)
async def test_bad_inbox_queries_are_400(client: Client, query: str) -> None:
    await request(client, "GET", f"/api/v1/inbox?{query}", 400)


async def test_an_unknown_line_is_404(client: Client) -> None:
    await request(client, "GET", "/api/v1/inbox?line=nowhere", 404)
    await request(client, "GET", "/api/v1/reports/daily?line=nowhere", 404)


async def test_mark_handled(client: Client, inbox: tuple[InboxService, FakeControl]) -> None:
    service, _ = inbox
    await service.store.save_call(missed_call("c1"))
    item = await request(
        client, "POST", "/api/v1/inbox/c1/handled", 200, json={"by": "alice", "note": "done"}
    )
    assert (item["state"], item["handled_by"], item["note"]) == ("handled", "alice", "done")
    conflict = await request(client, "POST", "/api/v1/inbox/c1/handled", 409, json={"by": "bob"})
    assert conflict["error"] == "already handled by alice"
    await request(client, "POST", "/api/v1/inbox/nope/handled", 404, json={"by": "alice"})
    await request(client, "POST", "/api/v1/inbox/c1/handled", 404, json={"by": "mallory"})
    for body in ({}, {"by": 3}, {"by": "alice", "note": 5}, {"by": "alice", "mood": "x"}, ["alice"]):
        await request(client, "POST", "/api/v1/inbox/c1/handled", 422, json=body)
    await request(
        client,
        "POST",
        "/api/v1/inbox/c1/handled",
        400,
        data=b"{",
        headers={"Content-Type": "application/json"},
    )
    await request(client, "POST", "/api/v1/inbox/c1/handled", 415, data=b"by=alice")


async def test_call_back(client: Client, inbox: tuple[InboxService, FakeControl]) -> None:
    service, control = inbox
    await service.store.save_call(missed_call("c1"))
    body = await request(client, "POST", "/api/v1/inbox/c1/callback", 202, json={"user": "alice"})
    assert control.dialed == [(CALLER, "sales", "alice", None)]
    assert (await service.item(body["call_id"])) is not None
    await request(client, "POST", "/api/v1/inbox/c1/callback", 409, json={"user": "bob"})  # bob is busy
    await request(client, "POST", "/api/v1/inbox/c1/callback", 404, json={"user": "mallory"})
    await request(client, "POST", "/api/v1/inbox/nope/callback", 404, json={"user": "alice"})
    await request(client, "POST", "/api/v1/inbox/c1/callback", 422, json={"user": ""})


async def test_voicemail_audio(
    client: Client, inbox: tuple[InboxService, FakeControl], tmp_path: Path
) -> None:
    service, _ = inbox
    await service.store.save_call(missed_call("c1"))
    await service.store.save_call(missed_call("c2", minute=1, voicemail=None))
    stem = leave_message(tmp_path, "INBOX", 0, T0 + timedelta(seconds=25))
    async with client.get("/api/v1/calls/c1/voicemail", headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "audio/wav"
        assert await response.read() == stem.with_suffix(".wav").read_bytes()
    await request(client, "GET", "/api/v1/calls/c2/voicemail", 404)
    await request(client, "GET", "/api/v1/calls/unknown/voicemail", 404)
    stem.with_suffix(".txt").unlink()
    gone = await request(client, "GET", "/api/v1/calls/c1/voicemail", 410)
    assert gone["error"] == "the message was deleted meanwhile"


async def test_daily_report(client: Client, inbox: tuple[InboxService, FakeControl]) -> None:
    service, _ = inbox
    await service.store.save_call(missed_call("c1"))
    day = T0.date().isoformat()
    body = await request(client, "GET", f"/api/v1/reports/daily?line=sales&from={day}&to={day}", 200)
    assert [
        (row["line"], row["day"], row["calls"], row["missed"], row["voicemails"]) for row in body["rows"]
    ] == [("sales", day, 1, 1, 1)]
    assert (await request(client, "GET", f"/api/v1/reports/daily?from={day}&to=2000-01-01", 200)) == {
        "rows": []
    }
    await request(client, "GET", "/api/v1/reports/daily?from=0001-01-01&to=9999-12-31", 200)
    await request(client, "GET", "/api/v1/reports/daily?to=someday", 400)


async def test_calls_as_csv(client: Client, history: FakeHistory) -> None:
    async with client.get("/api/v1/calls?format=csv&line=sales", headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [row["id"] for row in rows] == ["1714982400.3", "1714982400.2", "1714982400.1"]
    assert (rows[2]["outcome"], rows[2]["reason"], rows[2]["short"]) == (
        "missed",
        "ring_group_no_answer",
        "false",
    )
    assert history.queries[-1]["limit"] == 1000
    await request(client, "GET", "/api/v1/calls?format=xml", 400)


def test_csv_cells_never_run_as_formulas() -> None:
    record = call(
        "x",
        answered_by="=HYPERLINK(1)",
        host="+1+cmd",
        followups=(Followup("sms", "sent", "+4930111111", T0),),
    )
    (header, row) = list(csv.reader(io.StringIO(calls_csv([record]))))
    cells = dict(zip(header, row, strict=True))
    assert cells["answered_by"] == "'=HYPERLINK(1)"
    assert cells["host"] == "'+1+cmd"
    assert cells["caller"] == "+4930111111"  # a plain number stays one
    assert cells["texts"] == "sent:+4930111111"


async def test_listed_calls_show_their_texts(inbox: tuple[InboxService, FakeControl]) -> None:
    """The list used to show every record's `followups` empty; one query fetches them for the page."""
    service, _ = inbox
    store = service.store
    await store.save_call(missed_call("c1"))
    await store.save_call(missed_call("c2", minute=1, outcome=Outcome.ANSWERED, reason=Reason.ANSWERED))
    await store.enqueue(
        OutboxItem.new(
            kind=OutboxKind.SMS,
            idempotency_key="sms:c1",
            destination=CALLER,
            payload={},
            now=T0,
            call_id="c1",
        )
    )
    history = CallHistoryWithFollowups(store, cast(FollowupService, None))
    listed = await history.list_calls(limit=10, since=None, line=None, outcome=None)
    assert [(record.id, [f.status for f in record.followups]) for record in listed] == [
        ("c2", []),
        ("c1", ["pending"]),
    ]
