"""Callers, ARI look-ups and waiting for integration tests against the sandbox Asterisk.

A caller is placed with an ARI originate of `Local/<dialled>@callkeeper-inbound`: the `;2` half is the
inbound call that enters Stasis(callkeeper,inbound,<dialled>), the `;1` half is the caller, which runs
its CALLER_SCRIPT once the call is answered (see tests/asterisk/README.md for the scripts and for the
users' dial strings).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import aiohttp

if TYPE_CHECKING:
    from tests.conftest import Sandbox

T = TypeVar("T")
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlacedCall:
    caller: str
    """Channel id of the caller (the `;1` half): hang it up to make the caller give up."""
    inbound: str
    """Channel id of the inbound call (the `;2` half): the channel of callkeeper's StasisStart."""


def _session(sandbox: Sandbox) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=sandbox.ari_url,
        headers={"Authorization": sandbox.authorization},
        timeout=aiohttp.ClientTimeout(total=10),
    )


async def ari(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """One ARI request (`path` below /ari); returns the status and the decoded JSON body, if any."""
    async with _session(sandbox) as session, session.request(method, f"/ari{path}", **kwargs) as response:
        body = await response.text()
        return response.status, json.loads(body) if body else None


async def place_call(
    sandbox: Sandbox,
    dialled: str,
    caller_id: str,
    script: str | None = None,
    *,
    context: str = "callkeeper-inbound",
    give_up_after: int | None = None,
) -> PlacedCall:
    """A caller dials `dialled` (entering `context`); unanswered, it hangs up after `give_up_after` s.

    `script` is the caller's CALLER_SCRIPT, run once the call is answered, e.g. "wait:2/dtmf:1/wait:10";
    None stays on the line. A script of waits alone is a caller who hangs up after that long whether
    or not anyone answered (callkeeper leaves a caller unanswered while users' phones ring); other
    callers give up after 600 s unanswered.
    """
    if give_up_after is None:
        give_up_after = _seconds_of_waiting(script) or 600
    call = PlacedCall(caller=f"caller-{uuid.uuid4().hex[:12]}", inbound=f"inbound-{uuid.uuid4().hex[:12]}")
    variables = {"CALLER_SCRIPT": script} if script is not None else {}
    status, body = await ari(
        sandbox,
        "POST",
        "/channels",
        json={
            "endpoint": f"Local/{dialled}@{context}",
            "context": "test-caller",
            "extension": "s",
            "priority": 1,
            "callerId": caller_id,
            "timeout": give_up_after,
            "channelId": call.caller,
            "otherChannelId": call.inbound,
            "variables": variables,
        },
    )
    if status != 200:
        raise AssertionError(f"originate to {dialled} failed: HTTP {status} {body}")
    return call


def _seconds_of_waiting(script: str | None) -> int | None:
    steps = (script or "").split("/")
    if not script or not all(step.startswith("wait:") and step[5:].isdigit() for step in steps):
        return None
    return sum(int(step[5:]) for step in steps)


async def hang_up(sandbox: Sandbox, channel_id: str) -> bool:
    """Hangs a channel up; False when it was already gone."""
    status, body = await ari(sandbox, "DELETE", f"/channels/{channel_id}")
    if status not in (204, 404):
        raise AssertionError(f"hangup of {channel_id} failed: HTTP {status} {body}")
    return status == 204


async def list_channels(sandbox: Sandbox) -> list[Json]:
    status, body = await ari(sandbox, "GET", "/channels")
    assert status == 200, body
    return list(body)


async def channels_in_app(sandbox: Sandbox, app: str | None = None) -> list[Json]:
    """Channels that are in Stasis for `app` (default: the sandbox's app, callkeeper)."""
    app = app or sandbox.app
    return [
        channel
        for channel in await list_channels(sandbox)
        if channel["dialplan"]["app_name"] == "Stasis"
        and channel["dialplan"]["app_data"].split(",", 1)[0] == app
    ]


async def list_bridges(sandbox: Sandbox) -> list[Json]:
    status, body = await ari(sandbox, "GET", "/bridges")
    assert status == 200, body
    return list(body)


async def hang_up_everything(sandbox: Sandbox) -> None:
    """Leaves the sandbox without channels, for the next test."""
    for channel in await list_channels(sandbox):
        await hang_up(sandbox, channel["id"])
    await wait_until(lambda: _no_channels(sandbox), within=10, what="all channels gone")


async def _no_channels(sandbox: Sandbox) -> bool:
    return not await list_channels(sandbox)


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T]], within: float = ..., interval: float = ..., what: str = ...
) -> T: ...


@overload
async def wait_until(
    predicate: Callable[[], T], within: float = ..., interval: float = ..., what: str = ...
) -> T: ...


async def wait_until(
    predicate: Callable[[], Any],
    within: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> Any:
    """Polls `predicate` (plain or async) until it returns something truthy, and returns that."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        value = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {within} s")
        await asyncio.sleep(interval)


class AppEvents:
    """ARI events of one Stasis application, read from its websocket."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self._websocket = websocket
        self.seen: list[Json] = []

    async def next(
        self, event_type: str, where: Callable[[Json], bool] = lambda _: True, within: float = 10.0
    ) -> Json:
        """The next event of `event_type` that satisfies `where`; the skipped ones stay in `seen`."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [event["type"] for event in self.seen]
                raise TimeoutError(f"no {event_type} within {within} s; seen: {seen}")
            try:
                message = await self._websocket.receive(timeout=remaining)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"ARI websocket closed: {message.type.name}")
            event: Json = json.loads(message.data)
            self.seen.append(event)
            if event["type"] == event_type and where(event):
                return event


@asynccontextmanager
async def app_events(
    sandbox: Sandbox, app: str | None = None, subscribe_all: bool = False
) -> AsyncIterator[AppEvents]:
    """Registers the Stasis application `app` (default: callkeeper) while the block runs.

    Only one websocket receives an application's events: do not use callkeeper's name while a
    callkeeper daemon is connected; observe under another name with subscribe_all=True instead.
    """
    params = {"app": app or sandbox.app, "subscribeAll": "true" if subscribe_all else "false"}
    async with (
        aiohttp.ClientSession(headers={"Authorization": sandbox.authorization}) as session,
        session.ws_connect(f"{sandbox.ari_url}/ari/events", params=params, heartbeat=30) as websocket,
    ):
        yield AppEvents(websocket)
