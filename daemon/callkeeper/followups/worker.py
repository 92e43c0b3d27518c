"""The outbox worker: leases due items from the store, has them delivered, records what happened.

A crash at any point leaves each item pending or leased; a lease that runs out makes the item claimable
again, and the resend carries the same idempotency key, so the receiver drops the double. Sends run
side by side (up to `concurrency`), each bounded by a timeout shorter than the lease: a dead receiver
holds some slots for a while, never the worker.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from callkeeper.ari.backoff import ExponentialBackoff
from callkeeper.store.base import OutboxItem, OutboxKind, Store

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """How the worker paces itself. `lease_seconds` must outlast a send (`send_timeout_seconds`) plus
    the checks before it, or a slow send could be leased to a second worker meanwhile."""

    concurrency: int = 16
    lease_seconds: float = 60.0
    send_timeout_seconds: float = 15.0
    poll_seconds: float = 5.0
    max_attempts: int = 8
    retry_initial_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    retry_min_seconds: float = 1.0
    close_grace_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        if self.lease_seconds <= self.send_timeout_seconds:
            raise ValueError("lease_seconds must be longer than send_timeout_seconds")
        if self.poll_seconds <= 0 or self.retry_min_seconds < 0:
            raise ValueError("poll_seconds must be positive and retry_min_seconds not negative")


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str | None


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class Held:
    reason: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason: str


@dataclass(frozen=True, slots=True)
class Postponed:
    """Not now (quiet hours): due again at `until`."""

    until: datetime
    reason: str


Delivery = Sent | Failed | Held | Cancelled | Postponed


class Deliverer(Protocol):
    async def deliver(self, item: OutboxItem) -> Delivery:
        """Check the live facts and send; `Failed` for a send that did not go through."""

    async def gave_up(self, item: OutboxItem, error: str) -> None:
        """`item` is about to fail for good (before the store records it)."""

    def not_before(self, item: OutboxItem, moment: datetime) -> datetime:
        """The first instant at or after `moment` at which `item` may be attempted."""


@dataclass(slots=True)
class OutboxCounters:
    """Since start: deliveries by kind, and failed attempts (retried or final)."""

    sent: collections.Counter[OutboxKind]
    failures: int = 0


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        *,
        worker_id: str,
        clock: Clock,
        settings: OutboxSettings,
        sleep: Sleep = asyncio.sleep,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.worker_id = worker_id
        self.settings = settings
        self.counters = OutboxCounters(collections.Counter())
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff or ExponentialBackoff(
            initial=settings.retry_initial_seconds, maximum=settings.retry_max_seconds
        )
        self._wakeup = asyncio.Event()
        self._next_due: datetime | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._sending: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def new_id(host: str) -> str:
        return f"{host}/{uuid.uuid4().hex[:12]}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-worker")

    def wake(self, due: datetime | None = None) -> None:
        """An item is due at `due` (None: now); the worker claims it then instead of at its next poll."""
        if due is not None and due > self._clock():
            self._next_due = due if self._next_due is None else min(due, self._next_due)
        self._wakeup.set()

    async def close(self) -> None:
        """Stop claiming; let sends in flight finish for a grace period, then abandon them (their lease
        runs out and another run sends them again)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self.settings.close_grace_seconds)
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def run(self) -> None:
        await self._end_leases_of_predecessors()
        while True:
            self._wakeup.clear()
            now = self._clock()
            if self._next_due is not None and self._next_due <= now:
                self._next_due = None
            room = self.settings.concurrency - len(self._in_flight)
            claimed = await self._claim(now, room) if room > 0 else []
            for item in claimed:
                # Ours already: the lease ran out under a send still running (the clock jumped).
                if item.id in self._sending:
                    continue
                self._sending.add(item.id)
                task = asyncio.create_task(self._process(item), name=f"outbox-{item.id}")
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            # Every slot taken: more may be due, so go on as soon as a slot frees.
            await self._idle(wait_for_slot=len(claimed) == room)

    async def _end_leases_of_predecessors(self) -> None:
        """Items a dead daemon of this host was sending go out again at once rather than after their
        lease; the idempotency key keeps a send that did go through single at the provider."""
        host, separator, _ = self.worker_id.rpartition("/")
        if not separator:
            return
        try:
            ended = await self.store.end_leases_of_host(host, self._clock())
        except Exception as error:  # the store is down: the leases run out on their own
            log.warning("outbox_lease_reclaim_failed", error=repr(error))
            return
        if ended:
            log.info("outbox_leases_reclaimed", items=ended)

    async def _claim(self, now: datetime, room: int) -> list[OutboxItem]:
        try:
            return await self.store.claim_due(self.worker_id, now, room, self.settings.lease_seconds)
        except Exception as error:  # the store is down: poll again later
            log.warning("outbox_claim_failed", error=repr(error))
            return []

    async def _idle(self, *, wait_for_slot: bool) -> None:
        timeout = self.settings.poll_seconds
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, (self._next_due - self._clock()).total_seconds()))
        sleeping = asyncio.ensure_future(self._sleep(timeout))
        woken = asyncio.ensure_future(self._wakeup.wait())
        waiting: set[asyncio.Future[Any]] = {sleeping, woken}
        if wait_for_slot:
            waiting |= set(self._in_flight)
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (sleeping, woken):
                future.cancel()
            await asyncio.gather(sleeping, woken, return_exceptions=True)

    async def _process(self, item: OutboxItem) -> None:
        try:
            try:
                delivery = await asyncio.wait_for(
                    self.deliverer.deliver(item), self.settings.send_timeout_seconds
                )
            except Exception as error:  # a store outage in the checks, or a bug: retried like a failed send
                delivery = Failed(f"{type(error).__name__}", retryable=True)
            await self._record(item, delivery)
        except Exception as error:  # the lease runs out and the item is sent again (the key dedups)
            log.warning("outbox_record_failed", item=item.id, key=item.idempotency_key, error=repr(error))
        finally:
            self._sending.discard(item.id)

    async def _record(self, item: OutboxItem, delivery: Delivery) -> None:
        now = self._clock()
        fields = {"item": item.id, "key": item.idempotency_key, "attempt": item.attempts}
        match delivery:
            case Sent(provider_id=provider_id):
                await self.store.mark_sent(item.id, provider_id, now)
                self.counters.sent[item.kind] += 1
                log.info("outbox_sent", **fields)
            case Held(reason=reason):
                await self.store.mark_held(item.id, reason, now)
                log.info("outbox_held", reason=reason, **fields)
            case Cancelled(reason=reason):
                await self.store.cancel(reason=reason, now=now, item_id=item.id)
                log.info("outbox_cancelled", reason=reason, **fields)
            case Postponed(until=until, reason=reason):
                await self.store.mark_failed(item.id, reason, now, until)
                self.wake(until)
            case Failed(error=error, retryable=retryable):
                self.counters.failures += 1
                if retryable and item.attempts < self.settings.max_attempts:
                    retry_at = self.retry_at(item, now)
                    await self.store.mark_failed(item.id, error, now, retry_at)
                    self.wake(retry_at)
                    log.warning("outbox_retry", error=error, retry_at=retry_at.isoformat(), **fields)
                else:
                    await self.deliverer.gave_up(item, error)
                    await self.store.mark_failed(item.id, error, now, None)
                    log.error("outbox_failed", error=error, **fields)

    def retry_at(self, item: OutboxItem, now: datetime) -> datetime:
        """Exponential backoff with full jitter after attempt `item.attempts`, moved to when the item
        may be sent (quiet hours)."""
        delay = max(self.settings.retry_min_seconds, self._backoff.next_delay(item.attempts - 1))
        return self.deliverer.not_before(item, now + timedelta(seconds=delay))
