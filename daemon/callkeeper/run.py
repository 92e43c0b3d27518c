"""`callkeeper run`: wires the config, the store, the ARI connection, the call service and the
HTTP API together and owns the process life cycle (signals, reload, graceful stop)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import structlog

if sys.platform != "win32":
    import uvloop

from callkeeper.api.server import start_api
from callkeeper.ari.connection import AriConnection
from callkeeper.ari.errors import AriAuthError, AriError
from callkeeper.ari.rest import AriRestClient
from callkeeper.calls import inputs as ev
from callkeeper.calls.switchboard import endpoint_key
from callkeeper.config.loader import ConfigError, load_config, load_config_in_thread
from callkeeper.config.model import Config
from callkeeper.followups.service import FollowupService
from callkeeper.inbox.service import InboxService
from callkeeper.records import now_utc
from callkeeper.service.call_runner import CallService
from callkeeper.service.control import CallHistoryWithFollowups, LiveDaemon
from callkeeper.service.record_writer import RecordWriter
from callkeeper.service.systemd import Notifier, watchdog_loop
from callkeeper.service.translate import WANTED_EVENTS
from callkeeper.service.turns import RoundRobinTurns
from callkeeper.sounds import missing_sounds
from callkeeper.store import Store, open_store
from callkeeper.web.app import WebInbox
from callkeeper.web.sessions import session_key

log = structlog.get_logger(__name__)
GC_YOUNG_THRESHOLD = 10_000  # Python's default is 700 container objects

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2


class Daemon:
    def __init__(self, config: Config, config_path: Path, store: Store, host: str) -> None:
        self.config = config
        self.config_path = config_path
        self.store = store
        self.host = host
        self.stopping = asyncio.Event()
        self.session = aiohttp.ClientSession()
        self.rest = AriRestClient(config.asterisk, self.session)
        self.followups = FollowupService(config, store, session=self.session, host=host, ari_rest=self.rest)
        self.writer = RecordWriter(
            store, on_final=self.followups.on_call_finished, on_start=self.followups.on_call_started
        )
        self.service = CallService(
            config, self.rest, self.writer, host, on_answered=self.followups.on_call_answered
        )
        self.turns = RoundRobinTurns(store, self.service.feed, config)
        self.service.on_turn = self.turns.taken
        self.connection = AriConnection(
            config.asterisk,
            on_event=self.service.on_event,
            on_ready=self._on_ready,
            session=self.session,
            rest=self.rest,
        )
        self.control = LiveDaemon(
            self.service,
            store,
            self.followups,
            lambda: self.connection.ready,
            lambda: self.connection.reconnects,
            missing_sounds=lambda: self.missing_sounds,
        )
        self.inbox = InboxService(store, lambda: self.config, self.control)
        self.notifier = Notifier()
        self.first_ready = True
        self.missing_sounds: dict[str, list[str]] = {}

    async def _on_ready(self) -> None:
        app = self.config.asterisk.app
        await self.rest.set_event_filter(app, WANTED_EVENTS)
        await self._watch_devices()
        await self._check_sounds()
        now = now_utc()
        # The snapshot that settles what the device states said meanwhile. `unknown` (not yet
        # qualified) counts as online, as the device state UNKNOWN does: a call may still reach it.
        for endpoint in await self.rest.list_endpoints():
            self.service.feed(
                ev.EndpointStateChanged(
                    f"{endpoint.technology}/{endpoint.resource}", endpoint.state != "offline", now
                )
            )
        # Records left open by a daemon that died: their calls are adopted or closed.
        await self.service.reconcile(await self.store.open_calls(self.host) if self.first_ready else ())
        self.first_ready = False
        log.info("ready", app=app, calls_in_progress=self.service.calls_in_progress())
        self.notifier.ready(f"connected to ARI, {self.service.calls_in_progress()} calls in progress")

    async def _watch_devices(self) -> None:
        """Every user's device state, so a phone busy on any call (not only ours) or offline is
        not rung. Asterisk sends each device's current state when the subscription starts. Not
        `endpoint:PJSIP`: Asterisk forwards to an endpoint's subscribers every event of every
        channel on it, so every call on the PBX, ours or not, would reach the daemon event by event
        (and ours twice)."""
        app = self.config.asterisk.app
        for device in sorted({endpoint_key(user.endpoint) for user in self.config.users.values()}):
            try:
                await self.rest.subscribe(app, f"deviceState:{device}")
            except AriError as error:
                log.warning("device_state_unavailable", device=device, error=str(error))

    async def _check_sounds(self) -> None:
        missing = await missing_sounds(self.rest, self.config)
        for sound, paths in missing.items():
            log.warning("sound_missing", sound=sound, used_by=paths)
        self.missing_sounds = missing

    async def reload(self) -> None:
        try:
            config = await load_config_in_thread(self.config_path)
        except (ConfigError, OSError) as error:
            log.error("reload_rejected", path=str(self.config_path), errors=str(error))
            return
        self.config = config
        self.service.engine.reload(config)
        self.followups.reload(config)
        self.turns.reload(config)
        if self.connection.ready:
            try:
                await self._watch_devices()
                await self._check_sounds()
            except AriError as error:  # Asterisk went away meanwhile: the next connect does both
                log.warning("reload_checks_failed", error=str(error))
        log.info("config_reloaded", path=str(self.config_path))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.service.tasks.start(self.reload(), name="reload"))
        self.writer.start()
        await self.control.restore()
        self.turns.start()
        self.followups.start()
        history = CallHistoryWithFollowups(self.store, self.followups)
        http = self.config.http
        pages = WebInbox(
            self.inbox, history, lambda: self.config, session_key(http.session_secret, http.token)
        )
        api = await start_api(http, history, self.control, self.inbox, pages)
        log.info("api_listening", host=self.config.http.host, port=self.config.http.port)
        connection = asyncio.create_task(self.connection.run(), name="ari-connection")
        watchdog = asyncio.create_task(
            watchdog_loop(self.notifier, lambda: not connection.done()), name="systemd-watchdog"
        )
        stop = asyncio.create_task(self.stopping.wait(), name="stop")
        try:
            await asyncio.wait({connection, stop}, return_when=asyncio.FIRST_COMPLETED)
            if connection.done():
                error = connection.exception()
                if isinstance(error, AriAuthError):
                    log.error("ari_auth_failed", error=str(error))
                    return EXIT_FATAL
                if error is not None:
                    log.error("ari_connection_failed", error=repr(error))
                    return EXIT_FATAL
            log.info("stopping", calls_in_progress=self.service.calls_in_progress())
            self.notifier.stopping()
            self.service.feed(ev.StopAccepting(now_utc()))
            await self.service.drain(self.config.shutdown_grace_seconds)
            return EXIT_OK
        finally:
            watchdog.cancel()
            stop.cancel()
            await self.connection.close()
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connection
            await api.cleanup()
            await self.service.close()
            await self.turns.close()
            await self.control.close()
            await self.writer.close()
            await self.followups.close()
            await self.store.close()
            await self.session.close()


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop (a dependency wherever it builds), asyncio's own loop on Windows: 10-14 % less daemon
    CPU per call in the replay (bench/README.md)."""
    if sys.platform == "win32":
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def run_daemon(config_path: Path) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as error:
        log.error("config_invalid", path=str(config_path), errors=str(error))
        return EXIT_CONFIG
    host = socket.gethostname()
    store = await open_store(config.storage, host)
    daemon = Daemon(config, config_path, store, host)
    _settle_garbage_collector()
    return await daemon.run()


def _settle_garbage_collector() -> None:
    """What the daemon built to start (modules, phone number metadata, the config) lives as long
    as it does: frozen, the collector's full passes stop walking it (13 ms a pass), and a larger
    first generation lets a call's short-lived objects die before they are promoted. Replay:
    6-10 % less CPU per call (bench/README.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
