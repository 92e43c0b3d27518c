"""Typed ARI REST calls, over the event websocket when `AriConnection` offers it (see wsrest.py),
otherwise over HTTP with aiohttp. Credentials travel only in the Authorization header; every
failure is one of the `errors` types."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import aiohttp
import orjson

from callkeeper.ari.errors import (
    TRANSPORT_ERRORS,
    AriError,
    AriNotFound,
    error_from_exception,
    error_from_response,
)
from callkeeper.ari.events import (
    AsteriskInfo,
    Bridge,
    Channel,
    Endpoint,
    Playback,
    parse_asterisk_info,
    parse_bridge,
    parse_channel,
    parse_endpoint,
    parse_playback,
)
from callkeeper.ari.wsrest import EventSocketRequests
from callkeeper.config.model import AsteriskConfig

BridgeType = Literal["mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single"]
Params = Mapping[str, str | int | float | None]


def basic_auth_header(config: AsteriskConfig) -> dict[str, str]:
    """The one place credentials are put on the wire (REST and the event websocket)."""
    token = base64.b64encode(f"{config.username}:{config.password.value}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def path_segment(value: str) -> str:
    return quote(value, safe="")


class AriRestClient:
    """One client per daemon. Pass a shared `session` or let the client own one (then call
    `close()` or use `async with`)."""

    def __init__(self, config: AsteriskConfig, session: aiohttp.ClientSession | None = None) -> None:
        self._base = config.url.rstrip("/") + "/ari"
        self._headers = basic_auth_header(config)
        self._timeout = aiohttp.ClientTimeout(
            total=config.request_timeout_seconds, sock_connect=config.connect_timeout_seconds
        )
        self._session = session
        self._owns_session = session is None
        self._socket: EventSocketRequests | None = None

    def use_event_socket(self, socket: EventSocketRequests) -> None:
        """Send requests over the event websocket whenever `socket` can take them."""
        self._socket = socket

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        waits_for_channel: bool = False,
    ) -> Any:
        """`waits_for_channel`: Asterisk answers only once the channel's own thread has run the
        command, which may be busy for as long as a playback lasts. Such a request would hold up
        every request behind it on the websocket, so it goes over HTTP. So does a path with a
        quoted id: Asterisk does not decode paths that arrive on the websocket."""
        query = None if params is None else {k: str(v) for k, v in params.items() if v is not None}
        socket = self._socket
        if socket is not None and not waits_for_channel and "%" not in path and socket.usable:
            return await socket.request(method, path, query, body)
        if self._session is None:
            self._session = aiohttp.ClientSession(json_serialize=_json_text)
        try:
            async with self._session.request(
                method,
                self._base + path,
                params=query,
                json=body,
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                content = await response.read()
                if response.status >= 300:
                    raise error_from_response(response.status, method, path, content, response.content_type)
        except TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, method, path) from exc
        return orjson.loads(content) if content else None

    # ---------------------------------------------------------------- asterisk

    async def asterisk_info(self) -> AsteriskInfo:
        return parse_asterisk_info(await self._request("GET", "/asterisk/info"))

    # ---------------------------------------------------------------- channels

    async def list_channels(self) -> list[Channel]:
        return [parse_channel(item) for item in await self._request("GET", "/channels")]

    async def answer(self, channel_id: str) -> None:
        await self._request("POST", f"/channels/{path_segment(channel_id)}/answer", waits_for_channel=True)

    async def ring(self, channel_id: str) -> None:
        await self._request("POST", f"/channels/{path_segment(channel_id)}/ring")

    async def stop_ring(self, channel_id: str) -> None:
        await self._request("DELETE", f"/channels/{path_segment(channel_id)}/ring")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """`reason`: normal, busy, congestion, no_answer, timeout, rejected, unallocated, ..."""
        await self._request("DELETE", f"/channels/{path_segment(channel_id)}", {"reason": reason})

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        params = {"variable": name, "value": value}
        await self._request("POST", f"/channels/{path_segment(channel_id)}/variable", params)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self._request("POST", f"/channels/{path_segment(channel_id)}/continue", params)

    async def play(
        self, channel_id: str, media: str | Sequence[str], playback_id: str | None = None
    ) -> Playback:
        """`media` like `sound:hello-world`; several are played one after the other."""
        params = {"media": media_param(media), "playbackId": playback_id}
        return parse_playback(
            await self._request("POST", f"/channels/{path_segment(channel_id)}/play", params)
        )

    async def stop_playback(self, playback_id: str) -> None:
        await self._request("DELETE", f"/playbacks/{path_segment(playback_id)}")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self._request("POST", f"/channels/{path_segment(channel_id)}/moh", {"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self._request("DELETE", f"/channels/{path_segment(channel_id)}/moh")

    async def create_channel(
        self,
        endpoint: str,
        app: str,
        app_args: str = "",
        *,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """The channel enters `app` at once (StasisStart, state Down); `dial()` makes it ring.
        `app_args` is comma-separated, as Stasis() receives them."""
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args or None,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
        }
        body = {"variables": dict(variables)} if variables else None
        return parse_channel(await self._request("POST", "/channels/create", params, body))

    async def dial(
        self,
        channel_id: str,
        caller: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - Asterisk's ring time, not a client timeout
    ) -> None:
        """When `timeout` (seconds) expires Asterisk hangs the channel up (cause 19)."""
        params = {"caller": caller, "timeout": timeout}
        await self._request("POST", f"/channels/{path_segment(channel_id)}/dial", params)

    # ---------------------------------------------------------------- bridges

    async def create_bridge(
        self, bridge_id: str | None = None, type: BridgeType = "mixing", name: str | None = None
    ) -> Bridge:
        params = {"bridgeId": bridge_id, "type": type, "name": name}
        return parse_bridge(await self._request("POST", "/bridges", params))

    async def list_bridges(self) -> list[Bridge]:
        return [parse_bridge(item) for item in await self._request("GET", "/bridges")]

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._request("DELETE", f"/bridges/{path_segment(bridge_id)}")

    async def add_channel(self, bridge_id: str, *channel_ids: str) -> None:
        """One request for all the channels. Asterisk answers a gone channel with 400 "Channel not
        found" here (and adds none of them); raised as the AriNotFound it is, like a gone bridge's 404."""
        params = {"channel": ",".join(channel_ids)}
        path = f"/bridges/{path_segment(bridge_id)}/addChannel"
        try:
            await self._request("POST", path, params, waits_for_channel=True)
        except AriError as error:
            if error.status == 400 and "not found" in error.message.lower():
                raise AriNotFound(error.status, error.method, error.path, error.message) from error
            raise

    # ---------------------------------------------------------------- endpoints, apps

    async def sound_languages(self, sound_id: str) -> frozenset[str]:
        """The languages Asterisk has the sound in (`hello-world`, `digits/1`); AriNotFound if none."""
        reply = await self._request("GET", f"/sounds/{path_segment(sound_id)}")
        return frozenset(str(item["language"]) for item in reply.get("formats", []))

    async def list_endpoints(self) -> list[Endpoint]:
        return [parse_endpoint(item) for item in await self._request("GET", "/endpoints")]

    async def send_message(
        self, to: str, from_: str, body: str, variables: Mapping[str, str] | None = None
    ) -> None:
        """An out-of-call text message, e.g. `to="pjsip:alice"` (SIP MESSAGE)."""
        params = {"to": to, "from": from_, "body": body}
        payload = {"variables": dict(variables)} if variables else None
        await self._request("PUT", "/endpoints/sendMessage", params, payload)

    async def subscribe(self, app: str, event_source: str) -> None:
        """`event_source` like `channel:<id>`, `bridge:<id>`, `endpoint:PJSIP/alice`, `endpoint:PJSIP`."""
        await self._request(
            "POST", f"/applications/{path_segment(app)}/subscription", {"eventSource": event_source}
        )

    async def set_event_filter(self, app: str, allowed: Sequence[str]) -> None:
        """Asterisk sends `app` only events of these types from now on (until it restarts)."""
        body = {"allowed": [{"type": name} for name in allowed]}
        await self._request("PUT", f"/applications/{path_segment(app)}/eventFilter", body=body)


def media_param(media: str | Sequence[str]) -> str:
    return media if isinstance(media, str) else ",".join(media)


def _json_text(body: Any) -> str:
    return orjson.dumps(body).decode()
