"""One poll of the inbox's change counter per daemon, however many pages are open.

Pages listen with server-sent events; the poll runs only while at least one page listens, so an idle
daemon does not touch the store. With PostgreSQL the counter covers every host, so a call taken or
handled on another host reaches this host's pages within one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.5
ERROR_BACKOFF_SECONDS = 5.0


class LiveVersion:
    def __init__(self, read: Callable[[], Awaitable[int]], poll_seconds: float = POLL_SECONDS) -> None:
        self._read = read
        self._poll_seconds = poll_seconds
        self._version: int | None = None
        self._changed: asyncio.Future[None] | None = None
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    async def current(self) -> int:
        """The counter now: the last poll's while pages listen, else read afresh."""
        if self._version is None or self._task is None or self._task.done():
            self._version = await self._read()
        return self._version

    async def wait_change(self, seen: int, within: float) -> int:
        """The counter once it differs from `seen`, or `seen` again after `within` s without a change."""
        self._listeners += 1
        self._start()
        try:
            if self._version is not None and self._version != seen:
                return self._version
            if self._changed is None or self._changed.done():
                self._changed = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await asyncio.shield(self._changed)
            return seen if self._version is None else self._version
        finally:
            self._listeners -= 1

    def _start(self) -> None:
        if not self.closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._poll(), name="inbox-live-poll")

    async def _poll(self) -> None:
        while self._listeners > 0 and not self.closed:
            try:
                version = await self._read()
            except Exception as error:
                log.warning("inbox_version_failed", error=repr(error))
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)
                continue
            if version != self._version:
                self._version = version
                self._wake()
            await asyncio.sleep(self._poll_seconds)

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def close(self) -> None:
        """Ends every open stream (on shutdown, so the HTTP server need not wait for them)."""
        self.closed = True
        self._wake()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
