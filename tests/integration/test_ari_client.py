"""Our ARI client against the sandbox Asterisk 22: typed events in order, REST calls, typed
errors, reconnects across a real Asterisk restart. Tests use their own Stasis app and channel ids
(users and callers are the Local channels of tests/asterisk/), so they do not see each other's calls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from callkeeper.ari import events as ari
from callkeeper.ari.backoff import ExponentialBackoff
from callkeeper.ari.connection import AriConnection, ConnectionState
from callkeeper.ari.errors import AriAuthError, AriConflict, AriError, AriNotFound
from callkeeper.config.model import AsteriskConfig, Secret
from tests.ari_rest import AriClientForTests

if TYPE_CHECKING:
    from tests.conftest import Sandbox

pytestmark = pytest.mark.integration

ANSWERING_USER = "Local/ann-1@user-answer"  # rings 1 s, answers, stays up


@pytest.fixture
def config(sandbox: Sandbox) -> AsteriskConfig:
    return AsteriskConfig(
        url=sandbox.ari_url,
        username=sandbox.username,
        password=Secret(sandbox.password),
        app=f"ck-ari-test-{uuid4().hex[:8]}",
        connect_timeout_seconds=2.0,
        request_timeout_seconds=5.0,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:10]}"


class EventLog:
    def __init__(self) -> None:
        self.events: list[ari.AriEvent] = []
        self._arrived = asyncio.Event()

    def __call__(self, event: ari.AriEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait_for(self, match: Callable[[ari.AriEvent], bool], seconds: float = 15.0) -> ari.AriEvent:
        async with asyncio.timeout(seconds):
            while True:
                for event in self.events:
                    if match(event):
                        return event
                self._arrived.clear()
                await self._arrived.wait()


def channel_of(event: ari.AriEvent) -> str | None:
    match event:
        case ari.Dial(peer=channel):
            return channel.id
        case (
            ari.StasisStart(channel=channel)
            | ari.StasisEnd(channel=channel)
            | ari.ChannelStateChange(channel=channel)
            | ari.ChannelDestroyed(channel=channel)
            | ari.ChannelHangupRequest(channel=channel)
            | ari.ChannelDtmfReceived(channel=channel)
            | ari.ChannelEnteredBridge(channel=channel)
            | ari.ChannelLeftBridge(channel=channel)
        ):
            return channel.id
    return None


def is_(
    kind: type[ari.AriEvent], channel_id: str | None = None, **fields: object
) -> Callable[[ari.AriEvent], bool]:
    def match(event: ari.AriEvent) -> bool:
        if not isinstance(event, kind):
            return False
        if channel_id is not None and channel_of(event) != channel_id:
            return False
        return all(getattr(event, name) == value for name, value in fields.items())

    return match


@dataclass
class Session:
    connection: AriConnection
    log: EventLog
    rest: AriClientForTests
    app: str

    async def answered_leg(self) -> str:
        """A channel of our app, dialled and answered."""
        leg = unique("leg")
        await self.rest.create_channel(ANSWERING_USER, self.app, "leg,test", channel_id=leg)
        await self.dial_when_started(leg)
        await self.log.wait_for(is_(ari.Dial, leg, dialstatus="ANSWER"))
        return leg

    async def dial_when_started(self, leg: str) -> None:
        # create_channel answers before the channel is really in Stasis: a dial sent at once
        # sometimes gets 409 "Channel not in Stasis application". StasisStart is the go.
        await self.log.wait_for(is_(ari.StasisStart, leg))
        await self.rest.dial(leg, timeout=10)


@contextlib.asynccontextmanager
async def connected(config: AsteriskConfig) -> AsyncIterator[Session]:
    log = EventLog()
    async with AriClientForTests(config) as rest:
        # The client's requests go over the event websocket once it is ready (HTTP before).
        connection = AriConnection(config, on_event=log, rest=rest)
        runner = asyncio.create_task(connection.run())
        try:
            async with asyncio.timeout(10):
                await connection.wait_ready()
            for _ in range(500):  # the socket's REST probe is answered a moment later
                if connection.requests.usable:
                    break
                await asyncio.sleep(0.01)
            assert connection.requests.usable
            yield Session(connection, log, rest, config.app)
        finally:
            for channel in await rest.list_channels():
                if channel.dialplan.app_data.startswith(config.app):
                    with contextlib.suppress(AriNotFound):
                        await rest.hangup(channel.id)
            await connection.close()
            await runner


async def test_created_channel_rings_answers_plays_and_hangs_up(config: AsteriskConfig) -> None:
    async with connected(config) as session:
        rest, log, leg = session.rest, session.log, unique("leg")

        created = await rest.create_channel(
            ANSWERING_USER, config.app, "leg,call-1", channel_id=leg, variables={"CK_TEST": "yes"}
        )
        await session.dial_when_started(leg)
        await log.wait_for(is_(ari.Dial, leg, dialstatus="ANSWER"))

        assert created.id == leg
        assert created.state == "Down"
        flow = [
            (event.type, event.channel.state if not isinstance(event, ari.Dial) else event.dialstatus)
            for event in log.events
            if isinstance(event, ari.StasisStart | ari.ChannelStateChange | ari.Dial)
            and channel_of(event) == leg
        ]
        assert flow[0] == ("StasisStart", "Down")
        # Asterisk publishes these three on different paths: their order varies from call to call.
        assert sorted(flow[1:4]) == [("ChannelStateChange", "Ringing"), ("Dial", ""), ("Dial", "RINGING")]
        assert flow[4:] == [("ChannelStateChange", "Up"), ("Dial", "ANSWER")]
        start = await log.wait_for(is_(ari.StasisStart, leg))
        assert isinstance(start, ari.StasisStart)
        assert start.args == ("leg", "call-1")
        assert start.application == config.app
        assert start.timestamp.tzinfo is not None
        stamps = [event.timestamp for event in log.events if not isinstance(event, ari.UnknownEvent)]
        assert stamps == sorted(stamps)
        assert await rest.get_variable(leg, "CK_TEST") == "yes"

        playback_id = unique("pb")
        playback = await rest.play(leg, "sound:hello-world", playback_id)
        finished = await log.wait_for(
            lambda e: isinstance(e, ari.PlaybackFinished) and e.playback.id == playback_id
        )

        assert playback.id == playback_id
        assert playback.target_uri == f"channel:{leg}"
        assert isinstance(finished, ari.PlaybackFinished)
        assert finished.playback.state == "done"
        assert any(isinstance(e, ari.PlaybackStarted) and e.playback.id == playback_id for e in log.events)

        await rest.hangup(leg)
        destroyed = await log.wait_for(is_(ari.ChannelDestroyed, leg))

        assert isinstance(destroyed, ari.ChannelDestroyed)
        assert destroyed.cause == 16
        assert any(is_(ari.StasisEnd, leg)(e) for e in log.events)
        with pytest.raises(AriNotFound, match="Channel not found"):
            await rest.hangup(leg)
        with pytest.raises(AriNotFound):
            await rest.get_channel(leg)
        with pytest.raises(AriNotFound):
            await rest.play(leg, "sound:beep")


async def test_channel_calls_on_an_answered_channel(config: AsteriskConfig) -> None:
    async with connected(config) as session:
        rest = session.rest
        leg = await session.answered_leg()

        assert (await rest.get_channel(leg)).state == "Up"
        assert leg in {channel.id for channel in await rest.list_channels()}
        await rest.set_variable(leg, "CK_COLOR", "blue")
        assert await rest.get_variable(leg, "CK_COLOR") == "blue"
        with pytest.raises(AriNotFound, match="variable was not found"):
            await rest.get_variable(leg, "CK_NEVER_SET")
        await rest.answer(leg)
        await rest.ring(leg)
        await rest.stop_ring(leg)
        await rest.start_moh(leg, "default")
        await rest.stop_moh(leg)
        await rest.send_dtmf(leg, "12", duration_ms=100)
        playback_id = unique("pb")
        await rest.play(leg, ["sound:beep", "sound:beep"], playback_id)
        await rest.stop_playback(playback_id)
        await session.log.wait_for(
            lambda e: isinstance(e, ari.PlaybackFinished) and e.playback.id == playback_id
        )

        await rest.continue_in_dialplan(leg, "user-busy", "ann", 1)
        await session.log.wait_for(is_(ari.StasisEnd, leg))

        with pytest.raises(AriConflict, match="not in Stasis"):
            await rest.continue_in_dialplan(leg, "user-busy", "ann", 1)


async def test_inbound_call_with_caller_dtmf(config: AsteriskConfig, sandbox: Sandbox) -> None:
    """The shipped dialplan sends inbound calls into the app `callkeeper`."""
    async with connected(replace(config, app=sandbox.app)) as session:
        caller, inbound = unique("caller"), unique("inbound")

        await session.rest.originate(
            "Local/+12125550100@callkeeper-inbound",
            context="test-caller",
            extension="s",
            priority=1,
            caller_id='"Carl Caller" <+15551234567>',
            channel_id=caller,
            other_channel_id=inbound,
            variables={"CALLER_SCRIPT": "wait:1/dtmf:159/wait:5"},
        )
        start = await session.log.wait_for(is_(ari.StasisStart, inbound))
        await session.rest.answer(inbound)
        await session.log.wait_for(is_(ari.ChannelDtmfReceived, inbound, digit="9"))

        assert isinstance(start, ari.StasisStart)
        assert start.args == ("inbound", "+12125550100")
        assert start.channel.caller == ari.CallerId("Carl Caller", "+15551234567")
        assert start.channel.dialplan.context == "callkeeper-inbound"
        digits = [e for e in session.log.events if isinstance(e, ari.ChannelDtmfReceived)]
        assert [e.digit for e in digits] == ["1", "5", "9"]
        assert all(e.duration_ms > 0 and e.channel.id == inbound for e in digits)


async def test_bridge_life_cycle(config: AsteriskConfig) -> None:
    async with connected(config) as session:
        rest, log = session.rest, session.log
        leg = await session.answered_leg()
        bridge_id = unique("br")

        bridge = await rest.create_bridge(bridge_id, "mixing", name="test bridge")
        # Without a subscription the app hears of the bridge only through its channels:
        # no BridgeDestroyed.
        await rest.subscribe(config.app, f"bridge:{bridge_id}")
        await rest.add_channel(bridge_id, leg)
        entered = await log.wait_for(is_(ari.ChannelEnteredBridge, leg))

        assert bridge == ari.Bridge(bridge_id, bridge.technology, "mixing", "test bridge", ())
        assert isinstance(entered, ari.ChannelEnteredBridge)
        assert entered.bridge.id == bridge_id
        assert entered.bridge.channels == (leg,)
        assert (await rest.get_bridge(bridge_id)).channels == (leg,)
        assert bridge_id in {b.id for b in await rest.list_bridges()}

        playback_id = unique("pb")
        await rest.play_on_bridge(bridge_id, "sound:beep", playback_id)
        finished = await log.wait_for(
            lambda e: isinstance(e, ari.PlaybackFinished) and e.playback.id == playback_id
        )
        assert isinstance(finished, ari.PlaybackFinished)
        assert finished.playback.target_uri == f"bridge:{bridge_id}"
        await rest.start_bridge_moh(bridge_id, "default")
        await rest.stop_bridge_moh(bridge_id)

        recording = await rest.record("bridge", bridge_id, unique("rec"), max_duration_seconds=1)
        done = await log.wait_for(
            lambda e: isinstance(e, ari.RecordingFinished) and e.recording.name == recording.name
        )
        assert isinstance(done, ari.RecordingFinished)
        assert done.recording.target_uri == f"bridge:{bridge_id}"

        await rest.remove_channel(bridge_id, leg)
        await log.wait_for(is_(ari.ChannelLeftBridge, leg))
        await rest.destroy_bridge(bridge_id)
        destroyed = await log.wait_for(
            lambda e: isinstance(e, ari.BridgeDestroyed) and e.bridge.id == bridge_id
        )

        assert isinstance(destroyed, ari.BridgeDestroyed)
        with pytest.raises(AriNotFound, match="Bridge not found"):
            await rest.destroy_bridge(bridge_id)
        with pytest.raises(AriNotFound):
            await rest.add_channel(bridge_id, leg)
        # A gone channel: Asterisk says 400 "Channel not found", the client says it is gone.
        other = unique("br")
        await rest.create_bridge(other, "mixing")
        with pytest.raises(AriNotFound, match="Channel not found"):
            await rest.add_channel(other, unique("gone"))
        await rest.destroy_bridge(other)


async def test_originate_enters_the_app_once_answered(config: AsteriskConfig) -> None:
    async with connected(config) as session:
        leg = unique("orig")

        channel = await session.rest.originate(
            ANSWERING_USER,
            channel_id=leg,
            app=config.app,
            app_args="orig,7",
            caller_id='"Bob" <123>',
            timeout=10,
            variables={"CK_TEST": "orig"},
        )
        start = await session.log.wait_for(is_(ari.StasisStart, leg))

        assert channel.caller == ari.CallerId("Bob", "123")
        assert isinstance(start, ari.StasisStart)
        assert start.args == ("orig", "7")
        assert start.channel.state == "Up"
        # Before answer the channel is not in Stasis yet, but its Dial events reach the app.
        dials = [e.dialstatus for e in session.log.events if isinstance(e, ari.Dial) and e.peer.id == leg]
        assert dials[-1] == "ANSWER"


async def test_info_endpoints_subscription_and_message(config: AsteriskConfig) -> None:
    async with connected(config) as session:
        rest = session.rest

        info = await rest.asterisk_info()
        endpoints = await rest.list_endpoints()
        offline = await rest.get_endpoint("PJSIP", "offline1")
        await rest.subscribe(config.app, "endpoint:PJSIP/offline1")
        # Accepted (202) and sent in the background; nobody listens on that port.
        await rest.send_message("pjsip:offline1/sip:nobody@127.0.0.1:9", "sip:callkeeper@127.0.0.1", "test")

        assert info.version.startswith("22.")
        assert info.startup_time is not None
        assert any((e.technology, e.resource) == ("PJSIP", "offline1") for e in endpoints)
        assert offline == ari.Endpoint("PJSIP", "offline1", "offline", ())
        with pytest.raises(AriNotFound, match="Endpoint not found"):
            await rest.send_message("pjsip:offline1", "sip:callkeeper@127.0.0.1", "no contact to send to")
        with pytest.raises(AriNotFound, match="Endpoint not found"):
            await rest.get_endpoint("PJSIP", unique("nobody"))


async def test_wrong_password_stops_the_connection(config: AsteriskConfig) -> None:
    connection = AriConnection(replace(config, password=Secret("definitely-wrong")), on_event=EventLog())

    async with asyncio.timeout(10):
        with pytest.raises(AriAuthError, match=f"ARI rejected user '{config.username}'"):
            await connection.run()
    assert connection.state is ConnectionState.FATAL


async def test_second_client_on_the_same_app_replaces_the_first(config: AsteriskConfig) -> None:
    log = EventLog()
    first = AriConnection(config, on_event=log)
    first_run = asyncio.create_task(first.run())
    async with asyncio.timeout(10):
        await first.wait_ready()
    second = AriConnection(config, on_event=EventLog())
    second_run = asyncio.create_task(second.run())
    async with asyncio.timeout(10):
        await second.wait_ready()

    with pytest.raises(AriConflict, match="another ARI client"):
        async with asyncio.timeout(10):
            await first_run

    assert isinstance(log.events[-1], ari.ApplicationReplaced)
    assert first.state is ConnectionState.FATAL
    assert second.ready
    await second.close()
    await second_run


async def test_keepalive_pings_are_answered(config: AsteriskConfig) -> None:
    connection = AriConnection(config, on_event=EventLog(), ping_interval_seconds=0.2)
    runner = asyncio.create_task(connection.run())
    async with asyncio.timeout(10):
        await connection.wait_ready()

    await asyncio.sleep(1.5)

    assert connection.ready
    assert connection.reconnects == 0
    await connection.close()
    await runner


async def test_reconnects_after_asterisk_restarts(config: AsteriskConfig, sandbox: Sandbox) -> None:
    log = EventLog()
    calls: list[str] = []
    gone = asyncio.Event()

    async def on_ready() -> None:
        calls.append("ready")

    def on_disconnected() -> None:
        calls.append("disconnected")
        gone.set()

    connection = AriConnection(
        config,
        on_event=log,
        on_ready=on_ready,
        on_disconnected=on_disconnected,
        backoff=ExponentialBackoff(initial=0.1, maximum=0.5, seed=7),
    )
    runner = asyncio.create_task(connection.run())
    async with asyncio.timeout(10):
        await connection.wait_ready()

    # In threads, so that the connection keeps trying meanwhile: refused, then the HTML 404
    # and the 503 "Asterisk not booted" of a starting Asterisk, then ready.
    await asyncio.to_thread(sandbox.stop)
    async with asyncio.timeout(10):
        await gone.wait()
    down_state = connection.state
    await asyncio.to_thread(sandbox.start)
    async with asyncio.timeout(15):
        await connection.wait_ready()

    assert down_state in {ConnectionState.DISCONNECTED, ConnectionState.CONNECTING}
    assert connection.reconnects == 1
    assert calls == ["ready", "disconnected", "ready"]
    # The new socket carries the app's events again.
    async with AriClientForTests(config) as rest:
        leg = unique("leg")
        await rest.create_channel(ANSWERING_USER, config.app, "after,restart", channel_id=leg)
        start = await log.wait_for(is_(ari.StasisStart, leg))
        await rest.hangup(leg)
    assert isinstance(start, ari.StasisStart)
    assert start.args == ("after", "restart")

    await connection.close()
    await runner


async def test_typed_errors_for_gone_things(config: AsteriskConfig) -> None:
    async with AriClientForTests(config) as rest:
        gone = unique("gone")
        failures: list[AriError] = []
        for call in (
            lambda: rest.get_channel(gone),
            lambda: rest.hangup(gone),
            lambda: rest.answer(gone),
            lambda: rest.get_bridge(gone),
            lambda: rest.stop_playback(gone),
            lambda: rest.dial(gone),
        ):
            with pytest.raises(AriNotFound) as caught:
                await call()
            failures.append(caught.value)

    assert {failure.status for failure in failures} == {404}
    assert all(gone in failure.path for failure in failures)


async def test_requests_go_over_the_event_websocket_and_over_http_while_it_is_down(
    config: AsteriskConfig,
) -> None:
    async with connected(config) as session:
        rest, requests, gone = session.rest, session.connection.requests, unique("gone")
        sent = requests.sent
        assert (await rest.asterisk_info()).version
        with pytest.raises(AriNotFound, match="Channel not found") as caught:
            await rest.get_channel(gone)
        assert caught.value.status == 404
        assert caught.value.path == f"/channels/{gone}"
        bridge = unique("bridge")
        await rest.create_bridge(bridge)
        with pytest.raises(AriConflict):
            await rest.create_bridge(bridge)
        await rest.destroy_bridge(bridge)
        leg = unique("leg")  # query strings and a JSON body
        await rest.create_channel(ANSWERING_USER, session.app, channel_id=leg, variables={"CK_COLOR": "blue"})
        assert await rest.get_variable(leg, "CK_COLOR") == "blue"
        assert requests.sent == sent + 7

        await session.connection.close()
        assert not requests.usable
        with pytest.raises(AriNotFound, match="Channel not found"):
            await rest.get_channel(gone)
        assert (await rest.asterisk_info()).version
        await rest.create_bridge(bridge)
        await rest.destroy_bridge(bridge)
        with contextlib.suppress(AriNotFound):  # Asterisk may have ended it with our app
            await rest.hangup(leg)
        assert requests.sent == sent + 7


async def test_a_request_waiting_for_a_busy_channel_does_not_hold_up_the_others(
    config: AsteriskConfig,
) -> None:
    """Asterisk runs websocket requests one at a time, and an answer waits until the channel's
    thread is done with the playback: over the socket it would hold up every later request."""
    async with connected(config) as session:
        rest, requests = session.rest, session.connection.requests
        leg = await session.answered_leg()
        await rest.play(leg, "sound:tt-monkeys")  # 16 s
        await session.log.wait_for(is_(ari.PlaybackStarted))
        answer = asyncio.create_task(rest.answer(leg))
        await asyncio.sleep(0.2)

        sent = requests.sent
        async with asyncio.timeout(1):
            await rest.asterisk_info()
            await rest.get_channel(leg)
        assert requests.sent == sent + 2
        assert not answer.done()

        await rest.hangup(leg)
        with contextlib.suppress(AriError):
            await answer
