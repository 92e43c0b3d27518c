"""The outbox worker on a real store, with scripted deliveries and a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import pytest

from callkeeper.ari.backoff import ExponentialBackoff
from callkeeper.followups.worker import (
    Cancelled,
    Delivery,
    Failed,
    Held,
    OutboxSettings,
    OutboxWorker,
    Postponed,
    Sent,
)
from callkeeper.records import now_utc
from callkeeper.store import OutboxItem, OutboxKind, OutboxStatus, Store
from tests.followups.builders import MOBILE, T0, FakeClock, eventually

HANG = "hang"
GATED = "gated"
Step = Delivery | Exception | str


@dataclass
class Scripted:
    """Answers each delivery of a key with the next step of its script (the last one repeats)."""

    script: dict[str, list[Step]] = field(default_factory=dict)
    delivered: list[tuple[str, int]] = field(default_factory=list)
    given_up: list[tuple[str, str]] = field(default_factory=list)
    earliest: Callable[[datetime], datetime] = lambda moment: moment
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, item: OutboxItem) -> Delivery:
        self.delivered.append((item.idempotency_key, item.attempts))
        steps = self.script.get(item.idempotency_key, [Sent(f"id-{item.idempotency_key}")])
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if step == HANG:
            await asyncio.Event().wait()
        if step == GATED:
            await self.gate.wait()
            return Sent("late")
        if isinstance(step, Exception):
            raise step
        assert not isinstance(step, str)
        return step

    async def gave_up(self, item: OutboxItem, error: str) -> None:
        self.given_up.append((item.idempotency_key, error))

    def not_before(self, item: OutboxItem, moment: datetime) -> datetime:
        return self.earliest(moment)


FAST = OutboxSettings(
    concurrency=4,
    lease_seconds=2.0,
    send_timeout_seconds=0.5,
    poll_seconds=0.01,
    max_attempts=3,
    retry_initial_seconds=10.0,
    retry_max_seconds=100.0,
)


class Harness:
    def __init__(
        self,
        store: Store,
        settings: OutboxSettings = FAST,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.clock = FakeClock()
        self.deliverer = Scripted()
        self.worker = OutboxWorker(
            store,
            self.deliverer,
            worker_id="worker-1",
            clock=clock or self.clock,
            settings=settings,
            backoff=ExponentialBackoff(initial=10.0, maximum=100.0, seed=7),
        )

    async def add(self, key: str, kind: OutboxKind = OutboxKind.SMS, due: datetime = T0) -> OutboxItem:
        item = OutboxItem.new(
            kind=kind,
            idempotency_key=key,
            destination=MOBILE if kind is OutboxKind.SMS else "https://hooks.example/x",
            payload={},
            now=T0,
            call_id="call-1",
            line="sales",
            not_before=due,
        )
        assert await self.store.enqueue(item)
        return item

    async def item(self, key: str) -> OutboxItem:
        (found,) = [i for i in await self.store.outbox_for_call("call-1") if i.idempotency_key == key]
        return found

    async def status_is(self, key: str, status: OutboxStatus) -> bool:
        return (await self.item(key)).status is status


@pytest.fixture
async def harness(store: Store) -> AsyncIterator[Harness]:
    running = Harness(store)
    yield running
    await running.worker.close()


async def test_due_items_are_sent_and_counted(harness: Harness) -> None:
    await harness.add("sms:1")
    await harness.add("sms:2")
    await harness.add("webhook:1", OutboxKind.WEBHOOK)
    await harness.add("sms:later", due=T0 + timedelta(minutes=5))
    harness.worker.start()
    await eventually(lambda: harness.status_is("webhook:1", OutboxStatus.SENT))
    await eventually(lambda: harness.status_is("sms:2", OutboxStatus.SENT))
    sent = await harness.item("sms:1")
    assert (sent.status, sent.provider_id, sent.sent_at, sent.attempts) == (
        OutboxStatus.SENT,
        "id-sms:1",
        T0,
        1,
    )
    assert harness.worker.counters.sent == {OutboxKind.SMS: 2, OutboxKind.WEBHOOK: 1}
    assert (await harness.item("sms:later")).status is OutboxStatus.PENDING
    harness.clock.advance(300)
    await eventually(lambda: harness.status_is("sms:later", OutboxStatus.SENT))


async def test_retries_back_off_exponentially_then_fail_for_good(harness: Harness) -> None:
    harness.deliverer.script["sms:1"] = [Failed("HTTP 503: busy", retryable=True)]
    await harness.add("sms:1")
    expected = ExponentialBackoff(initial=10.0, maximum=100.0, seed=7)
    harness.worker.start()

    def delivered_up_to(attempt: int) -> bool:
        return harness.deliverer.delivered == [("sms:1", n) for n in range(1, attempt + 1)]

    for attempt in (1, 2):
        await eventually(partial(delivered_up_to, attempt))
        await eventually(lambda: harness.status_is("sms:1", OutboxStatus.PENDING))
        item = await harness.item("sms:1")
        delay = max(1.0, expected.next_delay(attempt - 1))
        assert delay <= 10.0 * 2 ** (attempt - 1)
        assert item.next_attempt_at == harness.clock.now + timedelta(seconds=delay)
        assert (item.attempts, item.last_error) == (attempt, "HTTP 503: busy")
        harness.clock.now = item.next_attempt_at
        harness.worker.wake()
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.FAILED))
    assert harness.deliverer.given_up == [("sms:1", "HTTP 503: busy")]
    assert (await harness.item("sms:1")).attempts == 3
    assert harness.worker.counters.failures == 3
    assert harness.worker.counters.sent == {}


async def test_a_final_failure_is_not_retried(harness: Harness) -> None:
    harness.deliverer.script["sms:1"] = [Failed("HTTP 400: bad To", retryable=False)]
    await harness.add("sms:1")
    harness.worker.start()
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.FAILED))
    assert harness.deliverer.delivered == [("sms:1", 1)]
    assert harness.deliverer.given_up == [("sms:1", "HTTP 400: bad To")]


async def test_a_crashing_delivery_is_retried_then_succeeds(harness: Harness) -> None:
    harness.deliverer.script["sms:1"] = [RuntimeError("store hiccup"), Sent("SM1")]
    await harness.add("sms:1")
    harness.worker.start()
    await eventually(lambda: harness.deliverer.delivered)
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.PENDING))
    assert (await harness.item("sms:1")).last_error == "RuntimeError"
    harness.clock.advance(10)
    harness.worker.wake()
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.SENT))
    assert (await harness.item("sms:1")).provider_id == "SM1"


async def test_held_cancelled_and_postponed(harness: Harness) -> None:
    harness.deliverer.script = {
        "sms:held": [Held("opted_out")],
        "sms:cancelled": [Cancelled("answered_on_later_call")],
        "sms:postponed": [Postponed(T0 + timedelta(hours=10), "quiet_hours"), Sent("SM9")],
    }
    for key in harness.deliverer.script:
        await harness.add(key)
    harness.worker.start()
    await eventually(lambda: harness.status_is("sms:held", OutboxStatus.HELD))
    await eventually(lambda: harness.status_is("sms:cancelled", OutboxStatus.CANCELLED))
    await eventually(lambda: harness.status_is("sms:postponed", OutboxStatus.PENDING))
    postponed = await harness.item("sms:postponed")
    assert (postponed.next_attempt_at, postponed.last_error) == (T0 + timedelta(hours=10), "quiet_hours")
    assert (await harness.item("sms:held")).last_error == "opted_out"
    assert harness.worker.counters.failures == 0
    harness.clock.advance(10 * 3600)
    await eventually(lambda: harness.status_is("sms:postponed", OutboxStatus.SENT))


async def test_retries_never_land_before_the_item_may_be_sent(harness: Harness) -> None:
    morning = T0 + timedelta(hours=8)
    harness.deliverer.earliest = lambda moment: max(moment, morning)
    harness.deliverer.script["sms:1"] = [Failed("no response: TimeoutError", retryable=True)]
    await harness.add("sms:1")
    harness.worker.start()
    await eventually(lambda: harness.deliverer.delivered)
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.PENDING))
    assert (await harness.item("sms:1")).next_attempt_at == morning


async def test_a_hanging_send_does_not_hold_up_the_others(harness: Harness) -> None:
    harness.deliverer.script["sms:dead"] = [HANG]
    await harness.add("sms:dead", due=T0 - timedelta(seconds=1))
    for n in range(6):
        await harness.add(f"sms:{n}")
    harness.worker.start()
    # The six others go out through the three free slots while the dead one waits for its timeout.
    await eventually(lambda: len(harness.deliverer.delivered) == 7, within=0.4)
    for n in range(6):
        assert await harness.status_is(f"sms:{n}", OutboxStatus.SENT)
    assert await harness.status_is("sms:dead", OutboxStatus.SENDING)
    await eventually(lambda: harness.status_is("sms:dead", OutboxStatus.PENDING))
    assert (await harness.item("sms:dead")).last_error == "TimeoutError"


async def test_an_expired_lease_is_claimed_again(harness: Harness) -> None:
    await harness.add("sms:1")
    (claimed,) = await harness.store.claim_due("crashed-worker", T0, 1, lease_seconds=30)
    harness.worker.start()
    await asyncio.sleep(0.1)
    assert harness.deliverer.delivered == []
    harness.clock.advance(30)
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.SENT))
    assert harness.deliverer.delivered == [("sms:1", 2)]
    assert claimed.attempts == 1


async def test_a_restarted_daemon_reclaims_its_own_leases_at_once(store: Store) -> None:
    """Its predecessor on this host died mid-send: the text goes out now, not when the lease ends. The
    lease of another host's worker (alive, maybe still sending) is left alone."""
    harness = Harness(store)
    harness.worker = OutboxWorker(
        store, harness.deliverer, worker_id=OutboxWorker.new_id("pbx-1"), clock=harness.clock, settings=FAST
    )
    await harness.add("sms:ours")
    await store.claim_due("pbx-1/dead0worker", T0, 1, lease_seconds=30)
    await harness.add("sms:theirs")
    await store.claim_due("pbx-2/alive", T0, 1, lease_seconds=30)
    harness.worker.start()
    try:
        await eventually(lambda: harness.status_is("sms:ours", OutboxStatus.SENT))
        await asyncio.sleep(0.1)
        assert harness.deliverer.delivered == [("sms:ours", 2)]
        assert await harness.status_is("sms:theirs", OutboxStatus.SENDING)
    finally:
        await harness.worker.close()


async def test_a_send_outliving_its_lease_is_not_started_twice_by_its_worker(harness: Harness) -> None:
    harness.deliverer.script["sms:1"] = [GATED]
    await harness.add("sms:1")
    harness.worker.start()
    await eventually(lambda: harness.deliverer.delivered)
    harness.clock.advance(FAST.lease_seconds + 1)  # the clock jumps: the lease runs out mid-send
    await eventually(lambda: harness.item("sms:1"))
    await asyncio.sleep(0.1)
    assert harness.deliverer.delivered == [("sms:1", 1)]
    harness.deliverer.gate.set()
    await eventually(lambda: harness.status_is("sms:1", OutboxStatus.SENT))
    assert harness.deliverer.delivered == [("sms:1", 1)]
    assert harness.worker.counters.sent == {OutboxKind.SMS: 1}


async def test_wake_beats_the_poll(store: Store) -> None:
    slow_poll = OutboxSettings(poll_seconds=60.0, lease_seconds=2.0, send_timeout_seconds=1.0)
    harness = Harness(store, slow_poll, clock=now_utc)
    harness.worker.start()
    try:
        await asyncio.sleep(0.05)
        due = now_utc() + timedelta(seconds=0.3)
        await harness.add("sms:soon", due=due)
        harness.worker.wake(due)
        await eventually(lambda: harness.deliverer.delivered, within=2.0)
        assert now_utc() >= due
        await harness.add("sms:now", due=now_utc())
        harness.worker.wake()
        await eventually(lambda: len(harness.deliverer.delivered) == 2, within=1.0)
    finally:
        await harness.worker.close()


async def test_close_abandons_sends_in_flight_to_their_lease(store: Store) -> None:
    settings = OutboxSettings(
        poll_seconds=0.01, lease_seconds=60.0, send_timeout_seconds=30.0, close_grace_seconds=0.1
    )
    harness = Harness(store, settings)
    harness.deliverer.script["sms:1"] = [HANG]
    await harness.add("sms:1")
    harness.worker.start()
    await eventually(lambda: harness.deliverer.delivered)
    await harness.worker.close()
    item = await harness.item("sms:1")
    assert (item.status, item.claimed_by) == (OutboxStatus.SENDING, "worker-1")


def test_settings_keep_the_lease_longer_than_a_send() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        OutboxSettings(lease_seconds=10.0, send_timeout_seconds=10.0)
    with pytest.raises(ValueError, match="at least 1"):
        OutboxSettings(concurrency=0)
