"""Whose turn it is in each round-robin ring group, kept in the store: a restarted daemon goes on
where it left off, and daemons on several hosts sharing one database take turns together.

The engine says who took a call (`actions.TakeTurn`); that is written at once. Every
`poll_seconds` the store is read, and a turn another host took is fed to the engine
(`inputs.TurnTaken`), so hosts agree within one poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog

from callkeeper.calls import inputs as ev
from callkeeper.config.model import Config, Strategy
from callkeeper.records import now_utc
from callkeeper.service.tasks import Tasks

log = structlog.get_logger(__name__)

KEY = "round_robin."
POLL_SECONDS = 2.0
CLOSE_GRACE_SECONDS = 2.0


class TurnStore(Protocol):
    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str | None) -> None: ...


class RoundRobinTurns:
    def __init__(
        self,
        store: TurnStore,
        feed: Callable[[ev.Input], None],
        config: Config,
        *,
        clock: Callable[[], datetime] = now_utc,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.feed = feed
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.tasks = Tasks()
        self.groups: tuple[str, ...] = ()
        self.reload(config)
        self.known: dict[str, str] = {}  # the last turn per group read or written here
        self.writing: dict[str, int] = {}  # writes in flight per group: a read meanwhile is stale

    def reload(self, config: Config) -> None:
        self.groups = tuple(
            name for name, group in config.ring_groups.items() if group.strategy is Strategy.ROUND_ROBIN
        )

    def taken(self, group: str, user: str) -> None:
        """A call of `group` was taken by `user` here (the engine knows already)."""
        self.known[group] = user
        self.writing[group] = self.writing.get(group, 0) + 1
        self.tasks.start(self._write(group, user), f"round-robin-{group}")

    async def _write(self, group: str, user: str) -> None:
        try:
            await self.store.set_state(KEY + group, user)
        finally:
            self.writing[group] -= 1
            if not self.writing[group]:
                del self.writing[group]

    async def sync(self) -> None:
        """Feed the engine the turns taken elsewhere (or before a restart)."""
        for group in self.groups:
            user = await self.store.get_state(KEY + group)
            if user is None or group in self.writing or self.known.get(group) == user:
                continue
            self.known[group] = user
            self.feed(ev.TurnTaken(group, user, self.clock()))

    def start(self) -> None:
        self.tasks.start(self._poll(), "round-robin-sync")

    async def close(self) -> None:
        """Stop polling; turns still being written get a moment to reach the store."""
        await self.tasks.close(CLOSE_GRACE_SECONDS)

    async def _poll(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception as error:  # the store is down: each host goes on with its own turns
                log.warning("round_robin_sync_failed", error=repr(error))
            await asyncio.sleep(self.poll_seconds)
