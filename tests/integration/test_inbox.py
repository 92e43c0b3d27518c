"""The missed-call inbox on real calls: a missed call with its voicemail, a callback through the API that
rings the user and then the caller, and an answered call that resolves the caller's earlier item."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Sandbox
from tests.integration.daemon import TOKEN, RunningDaemon, running_daemon
from tests.integration.sandbox_calls import wait_until
from tests.integration.sms_server import SmsServer

MAIN = "+12125550188"
FRONT = "+12125550189"
TEXTS = "+12125550187"
TEXT_DELAY_SECONDS = 8
CONFIG = {
    "users": {
        "alice": {"endpoint": "Local/alice-1-4@user-answer"},  # answers after 1 s, talks 4 s
        "bob": {"endpoint": "Local/bob@user-noanswer"},
        "carol": {"endpoint": "Local/carol-3-2@user-answer"},  # answers after 3 s, talks 2 s
    },
    "ring_groups": {
        "rings": {"members": ["bob"], "ring_seconds": 2},
        "front": {"members": ["carol"], "ring_seconds": 10},
    },
    "lines": {
        # Rings out after 2 s, then voicemail (the line's missed-call handling).
        "main": {"numbers": [MAIN], "route": "ring_group:rings", "missed_calls": {"mailbox": "1000@default"}},
        "front": {"numbers": [FRONT], "route": "ring_group:front"},
        "texts": {
            "numbers": [TEXTS],
            "route": "ring_group:rings",
            "followup_text": {"delay_seconds": TEXT_DELAY_SECONDS, "on": ["missed"]},
        },
    },
}
# The unavailable greeting takes about 8 s; then the caller speaks for about 3 s.
LEAVES_A_MESSAGE = "wait:10/play:hello-world/play:hello-world/play:hello-world/wait:1"


@pytest.fixture(scope="module")
def daemon(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory, sms: SmsServer
) -> Iterator[RunningDaemon]:
    config = {**CONFIG, "sms_providers": {"twilio": sms.provider()}}
    with running_daemon(sandbox, tmp_path_factory.mktemp("inbox"), config) as running:
        yield running


async def item_of(daemon: RunningDaemon, call_id: str) -> dict[str, Any]:
    status, item = await daemon.api("GET", f"/api/v1/inbox/{call_id}")
    assert status == 200, item
    assert isinstance(item, dict)
    return item


async def missed_with_voicemail(daemon: RunningDaemon, caller: str) -> dict[str, Any]:
    record = await daemon.verdict(await daemon.place(MAIN, LEAVES_A_MESSAGE, caller_id=caller), within=90)
    assert (record["outcome"], record["reason"]) == ("missed", "ring_group_no_answer"), record
    assert record["voicemail"]["left"] is True, record
    return record


async def test_a_missed_call_with_its_voicemail(daemon: RunningDaemon) -> None:
    record = await missed_with_voicemail(daemon, "+14155550123")
    item = await item_of(daemon, record["id"])
    assert (item["caller"], item["line"], item["state"], item["attempts"]) == (
        "+14155550123",
        "main",
        "open",
        1,
    )
    assert item["reason_text"] == "Nobody answered"
    assert item["voicemail"]["call_id"] == record["id"] and item["voicemail"]["seconds"] > 0

    status, listed = await daemon.api("GET", "/api/v1/inbox?line=main")
    assert status == 200
    assert record["id"] in [listed_item["call_id"] for listed_item in listed["items"]]

    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(f"{daemon.base_url}/api/v1/calls/{record['id']}/voicemail") as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "audio/wav"
        audio = await response.read()
    with wave.open(io.BytesIO(audio)) as message:
        assert message.getcomptype() == "NONE"  # PCM: what browsers play
        assert message.getnframes() / message.getframerate() > 1.0


async def assert_alice_reached(daemon: RunningDaemon, callback_id: str, caller: str) -> None:
    """The callback rang alice first, then reached the caller from the line they called."""
    callback = await daemon.verdict(callback_id)
    assert (callback["direction"], callback["outcome"], callback["answered_by"]) == (
        "outbound",
        "answered",
        "alice",
    )
    assert (callback["caller"], callback["dialed"]) == (MAIN, caller)
    assert [step["stage"] for step in callback["steps"]] == ["dialer_user", "dialer_contact", "answered"]


async def test_a_callback_rings_the_user_then_the_caller_and_resolves_the_item(daemon: RunningDaemon) -> None:
    record = await missed_with_voicemail(daemon, "+14155550100")  # test-outside answers numbers ending in 00
    status, body = await daemon.api("POST", f"/api/v1/inbox/{record['id']}/callback", json={"user": "alice"})
    assert status == 202, body
    await assert_alice_reached(daemon, body["call_id"], "+14155550100")

    item = await item_of(daemon, record["id"])
    assert (item["state"], item["resolved_by"], item["handled_by"]) == ("handled", body["call_id"], "alice")
    assert item["call_ids"] == [record["id"], body["call_id"]]


async def test_a_callback_nobody_answers_counts_an_attempt(daemon: RunningDaemon) -> None:
    record = await daemon.verdict(await daemon.place(MAIN, "wait:1", caller_id="+14155550199"))
    status, body = await daemon.api("POST", f"/api/v1/inbox/{record['id']}/callback", json={"user": "alice"})
    assert status == 202, body
    callback = await daemon.verdict(body["call_id"])
    assert (callback["outcome"], callback["reason"]) == ("abandoned", "progressive_no_answer")  # busy

    item = await item_of(daemon, record["id"])
    assert (item["state"], item["attempts"], item["call_id"]) == ("open", 2, body["call_id"])
    assert item["reason_text"] == "We called; they did not answer"


async def test_a_callback_nobody_answers_leaves_the_callers_text_to_go_out(
    daemon: RunningDaemon, sms: SmsServer
) -> None:
    """The user's phone answered the callback (so its record has `answered_by`), the caller's did not:
    the text planned for their missed call still goes out."""
    caller = "+14155550299"  # busy
    record = await daemon.verdict(await daemon.place(TEXTS, "wait:1", caller_id=caller))
    assert record["outcome"] == "missed", record
    status, body = await daemon.api("POST", f"/api/v1/inbox/{record['id']}/callback", json={"user": "alice"})
    assert status == 202, body
    callback = await daemon.verdict(body["call_id"])
    assert (callback["outcome"], callback["answered_by"]) == ("abandoned", "alice")
    await wait_until(lambda: sms.texts_to(caller), within=TEXT_DELAY_SECONDS + 20, what="the follow-up text")
    item = await item_of(daemon, record["id"])
    assert item["followup_text"]["status"] == "sent" and item["state"] == "open"


async def test_an_answered_call_resolves_the_callers_earlier_item(daemon: RunningDaemon) -> None:
    caller = "+14155550177"
    missed = await daemon.verdict(await daemon.place(FRONT, "wait:1", caller_id=caller))
    assert missed["outcome"] in ("missed", "abandoned"), missed
    assert (await item_of(daemon, missed["id"]))["state"] == "open"

    answered = await daemon.verdict(await daemon.place(FRONT, "wait:8", caller_id=caller))
    assert answered["outcome"] == "answered", answered

    async def resolved() -> bool:
        return bool((await item_of(daemon, missed["id"]))["state"] == "handled")

    await wait_until(resolved, within=10, what="the earlier item resolved")
    item = await item_of(daemon, missed["id"])
    assert (item["resolved_by"], item["handled_by"]) == (answered["id"], "carol")
    status, still_open = await daemon.api("GET", "/api/v1/inbox?line=front")
    assert status == 200 and missed["id"] not in [i["call_id"] for i in still_open["items"]]
    await daemon.assert_nothing_left()
