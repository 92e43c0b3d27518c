"""Tasks the shell starts beside the event path: each has an owner that logs its error (never lost
with the task) and cancels what is left when the daemon stops. Each starts with a log context of
its own (a call's worker binds the call's id there), not the one of whoever started it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Tasks:
    def __init__(self) -> None:
        self.running: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name, context=contextvars.Context())
        self.running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("task_failed", task=task.get_name(), error=repr(error), exc_info=error)

    async def close(self, grace_seconds: float = 0.0) -> None:
        """Let the tasks finish for `grace_seconds`, then cancel the rest."""
        if self.running and grace_seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    await asyncio.wait(set(self.running))
        left = set(self.running)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
