"""The ARI requests only tests and benchmarks make (the daemon never does): an `AriRestClient` with
channel, bridge and endpoint lookups, originate, DTMF, variables, recordings and bridge audio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from callkeeper.ari.events import (
    Bridge,
    Channel,
    Endpoint,
    LiveRecording,
    Playback,
    parse_bridge,
    parse_channel,
    parse_endpoint,
    parse_playback,
    parse_recording,
)
from callkeeper.ari.rest import AriRestClient, media_param, path_segment


class AriClientForTests(AriRestClient):
    async def get_channel(self, channel_id: str) -> Channel:
        return parse_channel(await self._request("GET", f"/channels/{path_segment(channel_id)}"))

    async def play_on_bridge(
        self, bridge_id: str, media: str | Sequence[str], playback_id: str | None = None
    ) -> Playback:
        params = {"media": media_param(media), "playbackId": playback_id}
        return parse_playback(await self._request("POST", f"/bridges/{path_segment(bridge_id)}/play", params))

    async def send_dtmf(
        self, channel_id: str, dtmf: str, between_ms: int | None = None, duration_ms: int | None = None
    ) -> None:
        params = {"dtmf": dtmf, "between": between_ms, "duration": duration_ms}
        await self._request("POST", f"/channels/{path_segment(channel_id)}/dtmf", params)

    async def get_variable(self, channel_id: str, name: str) -> str:
        """Raises AriNotFound for a gone channel and for an unset variable alike."""
        reply = await self._request(
            "GET", f"/channels/{path_segment(channel_id)}/variable", {"variable": name}
        )
        return str(reply["value"])

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        app: str | None = None,
        app_args: str = "",
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - Asterisk's ring time, not a client timeout
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Either `app` (the channel enters Stasis once answered) or a dialplan location."""
        if (app is None) == (context is None and extension is None):
            raise ValueError("originate needs either app or context/extension, not both")
        params = {
            "endpoint": endpoint,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "app": app,
            "appArgs": app_args or None,
            "context": context,
            "extension": extension,
            "priority": priority,
            "label": label,
            "callerId": caller_id,
            "timeout": timeout,
            "originator": originator,
        }
        body = {"variables": dict(variables)} if variables else None
        return parse_channel(await self._request("POST", "/channels", params, body))

    async def record(
        self,
        target: Literal["channel", "bridge"],
        target_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: Literal["fail", "overwrite", "append"] = "fail",
        beep: bool = False,
    ) -> LiveRecording:
        """Records a channel or a bridge. A channel recording fails (RecordingFailed) while the
        channel is in a bridge: record the bridge then."""
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": "true" if beep else "false",
        }
        path = f"/{target}s/{path_segment(target_id)}/record"
        return parse_recording(await self._request("POST", path, params))

    async def stop_recording(self, name: str) -> None:
        await self._request("POST", f"/recordings/live/{path_segment(name)}/stop")

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return parse_bridge(await self._request("GET", f"/bridges/{path_segment(bridge_id)}"))

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        params = {"channel": channel_id}
        path = f"/bridges/{path_segment(bridge_id)}/removeChannel"
        await self._request("POST", path, params, waits_for_channel=True)

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self._request("POST", f"/bridges/{path_segment(bridge_id)}/moh", {"mohClass": moh_class})

    async def stop_bridge_moh(self, bridge_id: str) -> None:
        await self._request("DELETE", f"/bridges/{path_segment(bridge_id)}/moh")

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint:
        path = f"/endpoints/{path_segment(technology)}/{path_segment(resource)}"
        return parse_endpoint(await self._request("GET", path))
