"""Asterisk's own view of the calls: an ARI application subscribed to everything (`subscribeAll`)
that no channel ever enters. It keeps, per channel, Asterisk's timestamps of what happened to it,
so latencies are measured by Asterisk's clock and never by the daemon under test."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
from tests.conftest import Sandbox

OBSERVER_APP = "bench-observer"


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Observer:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.events = 0
        self.lost = False
        self.created: dict[str, float] = {}
        self.stasis: dict[str, float] = {}
        self.up: dict[str, float] = {}
        self.ringing: dict[str, float] = {}
        self.destroyed: dict[str, float] = {}
        self.dialled_by: dict[str, str] = {}
        self.hangup_seq: dict[str, int] = {}
        self.hangup_at: dict[str, float] = {}
        self.bridged: defaultdict[str, dict[str, int]] = defaultdict(dict)
        self.playbacks_done: defaultdict[str, list[float]] = defaultdict(list)
        self.playback_seqs: defaultdict[str, list[int]] = defaultdict(list)
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._websocket: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(headers={"Authorization": self.sandbox.authorization})
        self._websocket = websocket = await self._session.ws_connect(
            f"{self.sandbox.ari_url}/ari/events",
            params={"app": OBSERVER_APP, "subscribeAll": "true"},
            heartbeat=30,
            max_msg_size=0,
        )
        self._reader = asyncio.create_task(self._read(websocket))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._websocket is not None:
            await self._websocket.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in websocket:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.note(json.loads(message.data))
        # Asterisk drops a websocket that does not keep up: from here on the view is incomplete.
        self.lost = True

    def note(self, event: dict[str, Any]) -> None:
        """Times are Asterisk's; `*_seq` is the order in which Asterisk sent the events."""
        self.events += 1
        kind = event["type"]
        at = _seconds(event["timestamp"])
        channel = event.get("channel") or {}
        channel_id = channel.get("id", "")
        if kind == "ChannelCreated":
            self.created[channel_id] = _seconds(channel["creationtime"])
        elif kind == "ChannelDialplan" and event.get("dialplan_app") == "Stasis":
            self.stasis.setdefault(channel_id, at)
        elif kind == "ChannelStateChange":
            if channel.get("state") == "Up":
                self.up.setdefault(channel_id, at)
            elif channel.get("state") == "Ringing":
                self.ringing.setdefault(channel_id, at)
        elif kind == "Dial":
            peer = event["peer"]["id"]
            caller = event.get("caller")
            if caller:
                self.dialled_by.setdefault(peer, caller["id"])
            if event.get("dialstatus") == "RINGING":
                self.ringing.setdefault(peer, at)
        elif kind == "PlaybackFinished":
            target = event["playback"]["target_uri"]
            if target.startswith("channel:"):
                self.playbacks_done[target.removeprefix("channel:")].append(at)
                self.playback_seqs[target.removeprefix("channel:")].append(self.events)
        elif kind == "ChannelEnteredBridge":
            self.bridged[event["bridge"]["id"]].setdefault(channel_id, self.events)
        elif kind == "ChannelDestroyed":
            self.destroyed[channel_id] = at
        if kind in ("ChannelHangupRequest", "ChannelDestroyed"):
            self.hangup_seq.setdefault(channel_id, self.events)
            self.hangup_at.setdefault(channel_id, at)

    # ------------------------------------------------------------ per call

    def legs_of(self, inbound: str) -> list[str]:
        """callkeeper's user legs of a call (`<call id>-leg-<n>`) and native Dial() peers."""
        prefix = f"{inbound}-leg-"
        return [c for c in self.created if c.startswith(prefix) or self.dialled_by.get(c) == inbound]

    def first_ring(self, inbound: str) -> float | None:
        times = [self.ringing[c] for c in self.legs_of(inbound) if c in self.ringing]
        return min(times) if times else None

    def talked_to_user(self, inbound: str) -> bool:
        """A user's channel was in one bridge with the caller before the caller hung up."""
        entered = self.bridged.get(f"callkeeper-{inbound}", {})
        left = self.hangup_seq.get(inbound, self.events + 1)
        return inbound in entered and any(
            seq < left for c, seq in entered.items() if c.startswith(f"{inbound}-leg-")
        )

    def rang_out(self, inbound: str) -> bool:
        """Every user channel the call rang was gone before the caller hung up."""
        legs = [c for c in self.legs_of(inbound) if c.startswith(f"{inbound}-leg-")]
        left = self.hangup_seq.get(inbound, self.events + 1)
        return bool(legs) and all(self.hangup_seq.get(c, left) < left for c in legs)

    def hung_up_before_playback_end(self, inbound: str) -> bool:
        """By Asterisk's clock, as the daemon decides (under saturation two apps' streams can
        order a playback's end and a hangup differently); within one millisecond, as a playback
        that the hangup stopped ends, by the order of this stream."""
        ended, ended_seq = self.playbacks_done.get(inbound), self.playback_seqs.get(inbound)
        if not ended or not ended_seq or inbound not in self.hangup_at:
            return not ended
        left, left_seq = self.hangup_at[inbound], self.hangup_seq[inbound]
        return left < ended[0] or (left == ended[0] and left_seq < ended_seq[0])

    def voicemail_dialled(self, inbound: str) -> bool:
        return any(c.startswith(f"{inbound}-vm-") for c in self.created)
