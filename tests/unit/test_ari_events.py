"""Parsing of ARI events and models, on JSON shaped like what Asterisk 22 sends."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from callkeeper.ari import events as ari
from callkeeper.ari.events import MalformedEvent, parse_event

STAMP = "2026-11-27T07:35:31.119+0000"


def channel_json(channel_id: str = "1764228931.17", state: str = "Ring") -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": "PJSIP/trunk-00000011",
        "state": state,
        "protocol_id": "abc@127.0.0.1",
        "caller": {"name": "Alice", "number": "+4915112345678"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "callkeeper-inbound",
            "exten": "+4930123456",
            "priority": 3,
            "app_name": "Stasis",
            "app_data": "callkeeper,inbound,+4930123456",
        },
        "creationtime": "2026-11-27T07:35:31.117+0000",
        "language": "en",
    }


def bridge_json() -> dict[str, Any]:
    return {
        "id": "br-1",
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": "call-7",
        "channels": ["a", "b"],
        "creationtime": "2026-11-27T07:35:37.622+0000",
        "video_mode": "talker",
    }


def event_json(event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": STAMP,
        "asterisk_id": "02:fc:00:00:00:01",
        "application": "callkeeper",
        **fields,
    }


def test_stasis_start_carries_the_whole_channel() -> None:
    event = parse_event(event_json("StasisStart", args=["inbound", "+4930123456"], channel=channel_json()))

    assert isinstance(event, ari.StasisStart)
    assert event.type == "StasisStart"
    assert event.application == "callkeeper"
    assert event.asterisk_id == "02:fc:00:00:00:01"
    assert event.timestamp == datetime(2026, 11, 27, 7, 35, 31, 119000, tzinfo=UTC)
    assert event.args == ("inbound", "+4930123456")
    assert event.replace_channel is None
    channel = event.channel
    assert channel == ari.Channel(
        id="1764228931.17",
        name="PJSIP/trunk-00000011",
        state="Ring",
        caller=ari.CallerId("Alice", "+4915112345678"),
        connected=ari.CallerId("", ""),
        dialplan=ari.DialplanCep(
            "callkeeper-inbound", "+4930123456", 3, "Stasis", "callkeeper,inbound,+4930123456"
        ),
        creationtime=datetime(2026, 11, 27, 7, 35, 31, 117000, tzinfo=UTC),
        language="en",
    )


def test_stasis_start_with_replaced_channel() -> None:
    event = parse_event(
        event_json("StasisStart", args=[], channel=channel_json("new"), replace_channel=channel_json("old"))
    )

    assert isinstance(event, ari.StasisStart)
    assert event.args == ()
    assert event.replace_channel is not None
    assert event.replace_channel.id == "old"


@pytest.mark.parametrize("event_type", ["StasisEnd", "ChannelStateChange"])
def test_channel_only_events(event_type: str) -> None:
    event = parse_event(event_json(event_type, channel=channel_json(state="Up")))

    assert type(event).__name__ == event_type
    assert event.type == event_type
    assert isinstance(event, ari.StasisEnd | ari.ChannelStateChange)
    assert event.channel.state == "Up"


def test_channel_destroyed() -> None:
    event = parse_event(
        event_json("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=channel_json())
    )

    assert isinstance(event, ari.ChannelDestroyed)
    assert (event.cause, event.cause_txt) == (16, "Normal Clearing")


def test_hangup_request_soft_and_hard() -> None:
    soft = parse_event(event_json("ChannelHangupRequest", cause=32, soft=True, channel=channel_json()))
    hard = parse_event(event_json("ChannelHangupRequest", cause=17, channel=channel_json()))
    bare = parse_event(event_json("ChannelHangupRequest", channel=channel_json()))

    assert isinstance(soft, ari.ChannelHangupRequest)
    assert (soft.cause, soft.soft) == (32, True)
    assert isinstance(hard, ari.ChannelHangupRequest)
    assert (hard.cause, hard.soft) == (17, False)
    assert isinstance(bare, ari.ChannelHangupRequest)
    assert bare.cause is None


def test_dtmf_received() -> None:
    event = parse_event(event_json("ChannelDtmfReceived", digit="5", duration_ms=100, channel=channel_json()))

    assert isinstance(event, ari.ChannelDtmfReceived)
    assert (event.digit, event.duration_ms) == ("5", 100)


def test_dial_of_a_created_channel_has_no_caller() -> None:
    event = parse_event(
        event_json(
            "Dial", dialstatus="RINGING", forward="", dialstring="5@sim-answer", peer=channel_json("leg")
        )
    )

    assert isinstance(event, ari.Dial)
    assert event.peer.id == "leg"
    assert event.caller is None
    assert (event.dialstatus, event.dialstring, event.forward) == ("RINGING", "5@sim-answer", "")


def test_dial_from_a_caller() -> None:
    event = parse_event(
        event_json(
            "Dial",
            dialstatus="ANSWER",
            dialstring="PJSIP/alice",
            peer=channel_json("leg"),
            caller=channel_json("call"),
        )
    )

    assert isinstance(event, ari.Dial)
    assert event.caller is not None
    assert event.caller.id == "call"
    assert event.forward == ""


@pytest.mark.parametrize("event_type", ["PlaybackStarted", "PlaybackFinished"])
def test_playback_events(event_type: str) -> None:
    playback = {
        "id": "pb-1",
        "media_uri": "sound:hello-world",
        "target_uri": "channel:c1",
        "language": "en",
        "state": "done",
    }
    event = parse_event(event_json(event_type, playback=playback))

    assert isinstance(event, ari.PlaybackStarted | ari.PlaybackFinished)
    assert event.playback == ari.Playback("pb-1", "sound:hello-world", "channel:c1", "done")


@pytest.mark.parametrize("event_type", ["ChannelEnteredBridge", "ChannelLeftBridge"])
def test_bridge_membership_events(event_type: str) -> None:
    event = parse_event(event_json(event_type, bridge=bridge_json(), channel=channel_json("a")))

    assert isinstance(event, ari.ChannelEnteredBridge | ari.ChannelLeftBridge)
    assert event.bridge == ari.Bridge("br-1", "simple_bridge", "mixing", "call-7", ("a", "b"))
    assert event.channel.id == "a"


def test_bridge_destroyed() -> None:
    event = parse_event(event_json("BridgeDestroyed", bridge=bridge_json()))

    assert isinstance(event, ari.BridgeDestroyed)
    assert event.bridge.id == "br-1"


def test_endpoint_state_change() -> None:
    endpoint = {"technology": "PJSIP", "resource": "alice", "state": "offline", "channel_ids": ["c1"]}
    event = parse_event(event_json("EndpointStateChange", endpoint=endpoint))

    assert isinstance(event, ari.EndpointStateChange)
    assert event.endpoint == ari.Endpoint("PJSIP", "alice", "offline", ("c1",))


def test_endpoint_without_state() -> None:
    assert ari.parse_endpoint({"technology": "PJSIP", "resource": "x", "channel_ids": []}).state is None


def test_userevent_with_and_without_channel() -> None:
    fields = {"status": "SUCCESS", "eventname": "CallkeeperVoicemail"}
    on_channel = parse_event(
        event_json(
            "ChannelUserevent", eventname="CallkeeperVoicemail", userevent=fields, channel=channel_json()
        )
    )
    on_app = parse_event(event_json("ChannelUserevent", eventname="Ping", userevent={}))

    assert isinstance(on_channel, ari.ChannelUserevent)
    assert on_channel.eventname == "CallkeeperVoicemail"
    assert on_channel.userevent == fields
    assert on_channel.channel is not None
    assert isinstance(on_app, ari.ChannelUserevent)
    assert on_app.channel is None


def test_varset_with_and_without_channel() -> None:
    on_channel = parse_event(event_json("ChannelVarset", variable="X", value="1", channel=channel_json()))
    global_var = parse_event(event_json("ChannelVarset", variable="G", value=""))

    assert isinstance(on_channel, ari.ChannelVarset)
    assert (on_channel.variable, on_channel.value) == ("X", "1")
    assert on_channel.channel is not None
    assert isinstance(global_var, ari.ChannelVarset)
    assert global_var.channel is None


def test_recording_finished_and_failed() -> None:
    finished = parse_event(
        event_json(
            "RecordingFinished",
            recording={
                "name": "vm-1",
                "format": "wav",
                "state": "done",
                "target_uri": "bridge:b1",
                "duration": 7,
            },
        )
    )
    failed = parse_event(
        event_json(
            "RecordingFailed",
            recording={
                "name": "rec1",
                "format": "wav",
                "state": "failed",
                "target_uri": "channel:c1",
                "cause": "Cannot record channel while in bridge",
            },
        )
    )

    assert isinstance(finished, ari.RecordingFinished)
    assert finished.recording == ari.LiveRecording("vm-1", "wav", "done", "bridge:b1", 7, None)
    assert isinstance(failed, ari.RecordingFailed)
    assert failed.recording.duration is None
    assert failed.recording.cause == "Cannot record channel while in bridge"


def test_application_replaced() -> None:
    event = parse_event(event_json("ApplicationReplaced"))

    assert isinstance(event, ari.ApplicationReplaced)
    assert event.application == "callkeeper"


def test_asterisk_id_may_be_missing() -> None:
    data = event_json("StasisEnd", channel=channel_json())
    del data["asterisk_id"]

    event = parse_event(data)

    assert isinstance(event, ari.StasisEnd)
    assert event.asterisk_id is None


def test_unknown_event_keeps_the_raw_json() -> None:
    data = event_json("ChannelDialplan", dialplan_app="Stasis", channel=channel_json())

    event = parse_event(data)

    assert event == ari.UnknownEvent("ChannelDialplan", data)


@pytest.mark.parametrize(
    ("data", "event_type", "reason"),
    [
        (event_json("StasisStart", args=[]), "StasisStart", "missing field 'channel'"),
        (
            event_json("ChannelDestroyed", channel=channel_json(), cause="x", cause_txt=""),
            "ChannelDestroyed",
            "",
        ),
        (event_json("StasisEnd", channel="1764228931.17"), "StasisEnd", ""),
        (event_json("StasisEnd", channel={**channel_json(), "dialplan": None}), "StasisEnd", ""),
        (event_json("StasisStart", args=None, channel=channel_json()), "StasisStart", ""),
        ({"type": "StasisEnd", "channel": channel_json()}, "StasisEnd", "missing field 'application'"),
        ({**event_json("StasisEnd", channel=channel_json()), "timestamp": "yesterday"}, "StasisEnd", ""),
        ({"application": "x"}, "<untyped>", "no 'type' field"),
        ({"type": 7}, "<untyped>", "'type' is int, not a string"),
    ],
)
def test_malformed_events_raise(data: dict[str, Any], event_type: str, reason: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(data)

    assert caught.value.event_type == event_type
    assert reason in caught.value.reason


def test_a_json_array_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        parse_event([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T07:26:14.123+0000", datetime(2026, 11, 27, 7, 26, 14, 123000, tzinfo=UTC)),
        ("2026-11-27T07:26:14+0000", datetime(2026, 11, 27, 7, 26, 14, tzinfo=UTC)),
        ("2026-11-27T08:26:14.123+0100", datetime(2026, 11, 27, 7, 26, 14, 123000, tzinfo=UTC)),
        ("2026-11-27T02:26:14.000-0500", datetime(2026, 11, 27, 7, 26, 14, tzinfo=UTC)),
    ],
)
def test_timestamps_become_aware_utc(text: str, expected: datetime) -> None:
    parsed = ari.parse_time(text)

    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_timestamp_without_offset_is_rejected() -> None:
    with pytest.raises(ValueError, match="without UTC offset"):
        ari.parse_time("2026-11-27T07:26:14.123")


def test_events_and_models_are_frozen_and_slotted() -> None:
    event = parse_event(event_json("StasisEnd", channel=channel_json()))

    assert isinstance(event, ari.StasisEnd)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.channel = event.channel  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.channel.state = "Up"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert not hasattr(event.channel, "__dict__")


def test_rest_models() -> None:
    info = ari.parse_asterisk_info(
        {
            "build": {"os": "Linux"},
            "system": {"version": "22.10.1", "entity_id": "02:fc:00:00:00:01"},
            "config": {"name": ""},
            "status": {
                "startup_time": "2026-11-27T07:26:59.340+0000",
                "last_reload_time": "2026-11-27T07:26:59.340+0000",
            },
        }
    )
    recording = ari.parse_recording(
        {"name": "r", "format": "wav", "state": "queued", "target_uri": "channel:c1"}
    )

    assert info == ari.AsteriskInfo(
        "22.10.1", "02:fc:00:00:00:01", datetime(2026, 11, 27, 7, 26, 59, 340000, tzinfo=UTC)
    )
    assert recording == ari.LiveRecording("r", "wav", "queued", "channel:c1", None, None)
