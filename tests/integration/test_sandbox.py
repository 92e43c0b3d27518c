"""The sandbox Asterisk and the test dialplan behave as tests/asterisk/README.md says."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import pytest

from tests.integration.sandbox_calls import (
    app_events,
    ari,
    channels_in_app,
    hang_up_everything,
    list_channels,
    place_call,
    wait_until,
)

if TYPE_CHECKING:
    from tests.conftest import Sandbox

TEST_CONTEXTS = [
    "callkeeper-inbound",
    "callkeeper-fallback",
    "test-caller",
    "user-answer",
    "user-noanswer",
    "user-busy",
    "user-reject",
    "user-congestion",
    "bench-native-ringgroup",
]


@pytest.fixture(autouse=True)
async def no_leftover_channels(sandbox: Sandbox) -> AsyncIterator[None]:
    yield
    await hang_up_everything(sandbox)


async def test_ari_answers_with_asterisk_22(sandbox: Sandbox) -> None:
    status, info = await ari(sandbox, "GET", "/asterisk/info")

    assert status == 200
    assert info["system"]["version"].startswith("22.")


async def test_ari_refuses_a_wrong_password(sandbox: Sandbox) -> None:
    status, _ = await ari(dataclasses.replace(sandbox, password="wrong"), "GET", "/asterisk/info")
    assert status == 401


@pytest.mark.parametrize("context", TEST_CONTEXTS)
def test_context_is_loaded(sandbox: Sandbox, context: str) -> None:
    assert f"Context '{context}' created" in sandbox.cli(f"dialplan show {context}")


@pytest.mark.parametrize("user", ["offline1", "offline2", "offline3"])
async def test_offline_user_cannot_be_dialled(sandbox: Sandbox, user: str) -> None:
    status, endpoint = await ari(sandbox, "GET", f"/endpoints/PJSIP/{user}")
    assert (status, endpoint["state"]) == (200, "offline")

    status, _ = await ari(
        sandbox, "POST", "/channels/create", json={"endpoint": f"PJSIP/{user}", "app": sandbox.app}
    )
    assert status == 500
    assert await list_channels(sandbox) == []


async def test_placed_call_enters_stasis_and_caller_runs_its_script(sandbox: Sandbox) -> None:
    async with app_events(sandbox) as events:
        call = await place_call(sandbox, "+12125550100", '"Carl Caller" <+15551234567>', "wait:1/dtmf:5#")

        start = await events.next("StasisStart")
        assert start["args"] == ["inbound", "+12125550100"]
        assert start["channel"]["id"] == call.inbound
        assert start["channel"]["caller"] == {"name": "Carl Caller", "number": "+15551234567"}
        assert [c["id"] for c in await channels_in_app(sandbox)] == [call.inbound]

        status, _ = await ari(sandbox, "POST", f"/channels/{call.inbound}/answer")
        assert status == 204
        digits = [
            (await events.next("ChannelDtmfReceived", lambda e: e["channel"]["id"] == call.inbound))["digit"]
            for _ in range(2)
        ]
        assert digits == ["5", "#"]
        hangup = await events.next("ChannelHangupRequest")
        assert hangup["cause"] == 16
        await events.next("StasisEnd", lambda e: e["channel"]["id"] == call.inbound)


async def test_call_goes_to_fallback_when_callkeeper_is_not_connected(sandbox: Sandbox) -> None:
    # A daemon that ran before may leave its app registered (inactive, with subscriptions) until
    # Asterisk restarts.
    sandbox.restart()

    async def callkeeper_not_registered() -> bool:
        status, _ = await ari(sandbox, "GET", f"/applications/{sandbox.app}")
        return status == 404

    await wait_until(callkeeper_not_registered, within=5, what="no websocket as callkeeper")
    call = await place_call(sandbox, "+12125550100", "+15551234567", "wait:60")

    async def in_fallback() -> bool:
        status, channel = await ari(sandbox, "GET", f"/channels/{call.inbound}")
        return status == 200 and channel["dialplan"]["context"] == "callkeeper-fallback"

    async def caller_gone() -> bool:
        status, _ = await ari(sandbox, "GET", f"/channels/{call.caller}")
        return status == 404

    await wait_until(in_fallback, within=5, what="the inbound call in callkeeper-fallback")
    # answered, ss-noservice, hung up: the caller is not stranded
    await wait_until(caller_gone, within=15, what="the caller hung up by the fallback")


@pytest.mark.parametrize(
    ("dial", "dial_seconds", "dialstatuses", "cause"),
    [
        ("Local/alice-1@user-answer", 30, ["", "RINGING", "ANSWER"], None),
        ("Local/erin-1-1@user-answer", 30, ["", "RINGING", "ANSWER"], 16),
        ("Local/bob@user-noanswer", 2, ["", "RINGING"], 19),
        ("Local/carol@user-busy", 30, ["", "BUSY"], 17),
        ("Local/dave-1@user-reject", 30, ["", "RINGING"], 21),
        ("Local/fred@user-congestion", 30, ["", "CONGESTION"], 34),
    ],
)
async def test_user_behaviour(
    sandbox: Sandbox, dial: str, dial_seconds: int, dialstatuses: list[str], cause: int | None
) -> None:
    async with app_events(sandbox) as events:
        status, channel = await ari(
            sandbox, "POST", "/channels/create", json={"endpoint": dial, "app": sandbox.app}
        )
        assert status == 200
        user = channel["id"]
        await events.next("StasisStart")
        status, _ = await ari(sandbox, "POST", f"/channels/{user}/dial", params={"timeout": dial_seconds})
        assert status == 204

        seen: list[str] = []
        while len(seen) < len(dialstatuses):
            seen.append((await events.next("Dial", lambda e: e["peer"]["id"] == user))["dialstatus"])
        # Dial events of the same instant (begin and BUSY, say) may come in either order.
        assert sorted(seen) == sorted(dialstatuses)
        if cause is not None:
            destroyed = await events.next("ChannelDestroyed", lambda e: e["channel"]["id"] == user)
            assert destroyed["cause"] == cause


async def test_stop_and_start(sandbox: Sandbox) -> None:
    sandbox.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await ari(sandbox, "GET", "/asterisk/info")

    sandbox.start()
    status, _ = await ari(sandbox, "GET", "/asterisk/info")
    assert status == 200
