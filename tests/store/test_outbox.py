from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest

from callkeeper.store import OutboxItem, OutboxKind, OutboxStatus, Store

from .conftest import REPO

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def sms(
    key: str, *, call_id: str = "call-1", at: datetime = T0, not_before: datetime | None = None
) -> OutboxItem:
    return OutboxItem.new(
        kind=OutboxKind.SMS,
        idempotency_key=key,
        destination="+15551230001",
        payload={"text": "Sorry we missed your call", "sender": "+15559870000"},
        now=at,
        call_id=call_id,
        line="sales",
        not_before=not_before,
    )


def webhook(key: str, *, call_id: str = "call-1", at: datetime = T0) -> OutboxItem:
    return OutboxItem.new(
        kind=OutboxKind.WEBHOOK,
        idempotency_key=key,
        destination="https://hooks.example.net/calls",
        payload={"event": "call.ended", "call": {"id": call_id}},
        now=at,
        call_id=call_id,
    )


async def test_enqueue_never_doubles(store: Store) -> None:
    first = sms("sms:call-1")
    assert await store.enqueue(first) is True
    assert await store.enqueue(first) is False
    assert await store.enqueue(sms("sms:call-1", at=T0 + timedelta(minutes=1))) is False
    assert await store.enqueue(webhook("webhook:call-1", at=T0 + timedelta(seconds=1))) is True

    items = await store.outbox_for_call("call-1")
    assert [(i.kind, i.idempotency_key) for i in items] == [
        (OutboxKind.SMS, "sms:call-1"),
        (OutboxKind.WEBHOOK, "webhook:call-1"),
    ]
    assert items[0] == first
    assert (await store.outbox_depth())["pending"] == 2


async def test_claim_send_and_retry(store: Store) -> None:
    item = sms("k", not_before=T0 + timedelta(seconds=60))
    await store.enqueue(item)
    assert await store.claim_due("w1", T0 + timedelta(seconds=59)) == []

    [claimed] = await store.claim_due("w1", T0 + timedelta(seconds=60), lease_seconds=30)
    assert claimed.id == item.id
    assert claimed.status is OutboxStatus.SENDING
    assert claimed.attempts == 1
    assert claimed.claimed_by == "w1"
    assert claimed.claimed_until == T0 + timedelta(seconds=90)
    assert await store.claim_due("w2", T0 + timedelta(seconds=61)) == []

    retry_at = T0 + timedelta(minutes=5)
    assert await store.mark_failed(item.id, "provider said 503", T0 + timedelta(seconds=62), retry_at)
    [pending] = await store.outbox_for_call("call-1")
    assert (pending.status, pending.last_error, pending.claimed_by) == (
        OutboxStatus.PENDING,
        "provider said 503",
        None,
    )
    assert await store.claim_due("w2", retry_at - timedelta(seconds=1)) == []

    [again] = await store.claim_due("w2", retry_at)
    assert (again.attempts, again.claimed_by) == (2, "w2")
    assert await store.mark_sent(item.id, "SM123", retry_at + timedelta(seconds=1))
    [sent] = await store.outbox_for_call("call-1")
    assert sent.status is OutboxStatus.SENT
    assert sent.provider_id == "SM123"
    assert sent.sent_at == retry_at + timedelta(seconds=1)
    assert sent.as_followup().to_json()["status"] == "sent"
    assert await store.claim_due("w3", retry_at + timedelta(days=1)) == []
    assert await store.outbox_depth() == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "failed": 0,
        "held": 0,
        "cancelled": 0,
    }


async def test_claims_oldest_due_first_up_to_limit(store: Store) -> None:
    for n in range(5):
        await store.enqueue(sms(f"k{n}", call_id=f"c{n}", not_before=T0 - timedelta(minutes=n)))
    first = await store.claim_due("w", T0, limit=3)
    assert [i.idempotency_key for i in first] == ["k4", "k3", "k2"]
    assert [i.idempotency_key for i in await store.claim_due("w", T0, limit=3)] == ["k1", "k0"]


async def test_expired_lease_is_claimed_again(store: Store) -> None:
    """A worker killed mid-send never reports: its lease expires and another worker retries."""
    item = sms("k")
    await store.enqueue(item)
    [claimed] = await store.claim_due("doomed", T0, lease_seconds=30)
    assert await store.claim_due("survivor", T0 + timedelta(seconds=29)) == []

    [reclaimed] = await store.claim_due("survivor", T0 + timedelta(seconds=30), lease_seconds=30)
    assert reclaimed.id == claimed.id
    assert (reclaimed.claimed_by, reclaimed.attempts) == ("survivor", 2)
    assert reclaimed.idempotency_key == claimed.idempotency_key


CLAIM_AND_HANG = """
import asyncio, sys
from datetime import datetime
from callkeeper.store import open_store

async def main() -> None:
    store = await open_store(sys.argv[1], "child")
    items = await store.claim_due("child", datetime.fromisoformat(sys.argv[2]), 10, 30)
    print(" ".join(item.id for item in items), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_claim_survives_sigkill_of_the_claiming_daemon(store: Store, store_url: str) -> None:
    items = [sms(f"k{n}", call_id=f"c{n}") for n in range(3)]
    for item in items:
        await store.enqueue(item)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLAIM_AND_HANG,
        store_url,
        T0.isoformat(),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "daemon")},
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 60)
    child.kill()
    await child.wait()
    assert sorted(line.decode().split()) == sorted(item.id for item in items)

    assert await store.claim_due("survivor", T0 + timedelta(seconds=10)) == []
    reclaimed = await store.claim_due("survivor", T0 + timedelta(seconds=31))
    assert sorted(i.id for i in reclaimed) == sorted(item.id for item in items)
    assert all(i.attempts == 2 for i in reclaimed)


async def test_late_reports_do_not_undo_the_outcome(store: Store) -> None:
    item = sms("k")
    await store.enqueue(item)
    await store.claim_due("w", T0)
    assert await store.mark_sent(item.id, "SM1", T0)
    assert not await store.mark_failed(item.id, "stale worker timed out", T0, None)
    assert not await store.mark_sent(item.id, "SM2", T0)
    assert not await store.mark_held(item.id, "opted out", T0)
    [sent] = await store.outbox_for_call("call-1")
    assert (sent.status, sent.provider_id) == (OutboxStatus.SENT, "SM1")


async def test_final_failure(store: Store) -> None:
    item = webhook("k")
    await store.enqueue(item)
    await store.claim_due("w", T0)
    assert await store.mark_failed(item.id, "410 Gone", T0, retry_at=None)
    assert await store.claim_due("w", T0 + timedelta(days=1)) == []
    [failed] = await store.outbox_for_call("call-1")
    assert (failed.status, failed.last_error) == (OutboxStatus.FAILED, "410 Gone")
    assert not await store.mark_failed(item.id, "again", T0, retry_at=T0)


async def test_held_items_wait_for_release(store: Store) -> None:
    item = sms("k")
    await store.enqueue(item)
    assert await store.mark_held(item.id, "caller opted out", T0)
    assert await store.claim_due("w", T0 + timedelta(hours=1)) == []
    assert (await store.outbox_depth())["held"] == 1
    assert not await store.release_held("no-such-item", T0, T0)
    assert await store.release_held(item.id, T0 + timedelta(hours=2), T0 + timedelta(hours=1))
    assert await store.claim_due("w", T0 + timedelta(hours=1)) == []
    [claimed] = await store.claim_due("w", T0 + timedelta(hours=2))
    assert claimed.id == item.id


async def test_cancel_by_item_by_call_and_kind(store: Store) -> None:
    await store.enqueue(sms("sms:c1", call_id="c1"))
    await store.enqueue(webhook("webhook:c1", call_id="c1"))
    await store.enqueue(sms("sms:c2", call_id="c2"))
    sent = sms("sms:c3", call_id="c3")
    await store.enqueue(sent)
    await store.mark_sent(sent.id, "SM1", T0)

    assert await store.cancel(reason="caller called back", now=T0, call_id="c1", kind=OutboxKind.SMS) == 1
    statuses = {i.kind: i.status for i in await store.outbox_for_call("c1")}
    assert statuses == {OutboxKind.SMS: OutboxStatus.CANCELLED, OutboxKind.WEBHOOK: OutboxStatus.PENDING}
    assert await store.cancel(reason="operator", now=T0, call_id="c1") == 1
    assert await store.cancel(reason="too late", now=T0, item_id=sent.id) == 0
    [c2] = await store.outbox_for_call("c2")
    assert await store.cancel(reason="operator", now=T0, item_id=c2.id) == 1
    [cancelled] = await store.outbox_for_call("c2")
    assert (cancelled.status, cancelled.last_error) == (OutboxStatus.CANCELLED, "operator")
    assert [i.id for i in await store.claim_due("w", T0 + timedelta(days=1))] == []
    with pytest.raises(ValueError, match="cancel"):
        await store.cancel(reason="everything", now=T0, kind=OutboxKind.SMS)


async def test_a_cancelled_send_that_went_out_is_recorded_as_sent(store: Store) -> None:
    item = sms("k")
    await store.enqueue(item)
    await store.claim_due("w", T0)
    assert await store.cancel(reason="caller called back", now=T0, item_id=item.id) == 1
    assert not await store.mark_failed(item.id, "timeout", T0, retry_at=T0)
    assert await store.mark_sent(item.id, "SM1", T0)
    [sent] = await store.outbox_for_call("call-1")
    assert sent.status is OutboxStatus.SENT


async def test_concurrent_daemons_never_claim_the_same_item(store: Store, other_store: Store) -> None:
    items = [sms(f"k{n}", call_id=f"c{n}") for n in range(300)]
    for item in items:
        await store.enqueue(item)

    async def worker(on: Store, name: str) -> list[str]:
        claimed: list[str] = []
        while batch := await on.claim_due(name, T0, limit=7, lease_seconds=300):
            claimed.extend(item.id for item in batch)
            await asyncio.sleep(0)
        return claimed

    results = await asyncio.gather(
        *(worker(on, f"{on.host}-{n}") for on in (store, other_store) for n in range(3))
    )
    everything = [item_id for claimed in results for item_id in claimed]
    assert len(everything) == len(set(everything)) == len(items)
    assert (await store.outbox_depth())["sending"] == len(items)


async def test_enqueue_race_between_daemons_keeps_one(store: Store, other_store: Store) -> None:
    outcomes = await asyncio.gather(
        *(on.enqueue(sms(f"sms:c{n}", call_id=f"c{n}")) for n in range(20) for on in (store, other_store))
    )
    assert sum(outcomes) == 20
    assert (await other_store.outbox_depth())["pending"] == 20


async def test_a_host_ends_the_leases_of_its_dead_workers(store: Store) -> None:
    for n, worker in enumerate(("pbx-1/dead", "pbx-1/dead-too", "pbx-10/alive", "pbx-2/alive")):
        await store.enqueue(sms(f"sms:{n}", call_id=f"call-{n}"))
        assert await store.claim_due(worker, T0, 1, lease_seconds=60)
    await store.enqueue(sms("sms:pending", call_id="call-9"))
    now = T0 + timedelta(seconds=1)
    assert await store.end_leases_of_host("pbx-1", now) == 2
    assert await store.end_leases_of_host("pbx-1", now) == 0
    reclaimed = await store.claim_due("pbx-1/new", now, 10)
    assert sorted(item.idempotency_key for item in reclaimed) == ["sms:0", "sms:1", "sms:pending"]
