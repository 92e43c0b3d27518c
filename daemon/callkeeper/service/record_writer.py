"""Writes call records off the event path: the engine hands over records at once, a single task
stores them, keeping only the newest version of a call that is waiting to be written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from callkeeper.records import CallRecord

log = structlog.get_logger(__name__)


class RecordSink(Protocol):
    async def save_call(self, record: CallRecord) -> None: ...


RecordHook = Callable[[CallRecord], Awaitable[None]]


class RecordWriter:
    """`on_start` runs for the first record of a call this writer stores (`call.started` webhooks;
    again for a call adopted after a restart, which the webhooks' idempotency keys absorb), `on_final`
    for a call's final record (follow-up texts, webhooks). Both are retried like a write until they
    succeed, so a store hiccup loses no follow-up."""

    def __init__(
        self,
        sink: RecordSink,
        retry_seconds: float = 1.0,
        on_final: RecordHook | None = None,
        on_start: RecordHook | None = None,
    ) -> None:
        self.sink = sink
        self.retry_seconds = retry_seconds
        self.on_final = on_final
        self.on_start = on_start
        self.started: set[str] = set()  # calls in progress whose on_start ran
        self.waiting: dict[str, CallRecord] = {}
        self.woken: asyncio.Future[None] | None = None  # what the idle writer waits on
        self.idle = asyncio.Event()
        self.idle.set()
        self.written = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="record-writer")

    def save(self, record: CallRecord) -> None:
        self.waiting[record.id] = record
        self.idle.clear()
        woken = self.woken
        if woken is not None and not woken.done():
            woken.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while self.waiting:
                call_id = next(iter(self.waiting))
                record = self.waiting.pop(call_id)
                try:
                    # Follow-ups are planned before the final record is stored: if the daemon dies
                    # in between, the record is still open, the restart closes it and plans again
                    # (planning is idempotent), so no follow-up is lost.
                    if self.on_start is not None and call_id not in self.started:
                        await self.on_start(record)
                        self.started.add(call_id)
                    if record.ended and self.on_final is not None:
                        await self.on_final(record)
                    await self.sink.save_call(record)
                    if record.ended:
                        self.started.discard(call_id)
                    self.written += 1
                except Exception as error:  # the store is down: keep the record and try again
                    self.failures += 1
                    log.warning("record_write_failed", call_id=call_id, error=str(error))
                    self.waiting.setdefault(call_id, record)
                    await asyncio.sleep(self.retry_seconds)
            self.idle.set()
            self.woken = loop.create_future()
            await self.woken

    async def flush(self, within_seconds: float = 10.0) -> bool:
        try:
            await asyncio.wait_for(self.idle.wait(), within_seconds)
        except TimeoutError:
            return False
        return True

    async def close(self, within_seconds: float = 10.0) -> None:
        await self.flush(within_seconds)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
