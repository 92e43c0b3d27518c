from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from callkeeper.store import OptOut, OutboxItem, OutboxKind, Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = 24 * 3600


async def test_opt_outs(store: Store, other_store: Store) -> None:
    assert not await store.is_opted_out("+15551230001")
    await store.set_opt_out("+15551230001", True, "sms:STOP", T0)
    await store.set_opt_out("+15551230002", True, "api", T0)
    assert await other_store.is_opted_out("+15551230001")
    await other_store.set_opt_out("+15551230002", False, "sms:START", T0 + timedelta(hours=1))
    assert not await store.is_opted_out("+15551230002")
    assert await store.list_opt_outs() == [OptOut("+15551230001", "sms:STOP", T0)]


async def test_text_window(store: Store) -> None:
    assert await store.last_text_to("+15551230001", "sales") is None
    assert await store.reserve_text_window("+15551230001", "sales", DAY, T0)
    assert not await store.reserve_text_window("+15551230001", "sales", DAY, T0 + timedelta(hours=23))
    assert await store.reserve_text_window("+15551230001", "support", DAY, T0 + timedelta(hours=1))
    assert await store.reserve_text_window("+15551230002", "sales", DAY, T0 + timedelta(hours=1))
    assert await store.last_text_to("+15551230001", "sales") == T0

    assert await store.reserve_text_window("+15551230001", "sales", DAY, T0 + timedelta(hours=24))
    assert await store.last_text_to("+15551230001", "sales") == T0 + timedelta(hours=24)


async def test_text_window_race_has_exactly_one_winner(store: Store, other_store: Store) -> None:
    numbers = [f"+1555123{n:04}" for n in range(30)]
    results = await asyncio.gather(
        *(
            on.reserve_text_window(number, "sales", DAY, T0 + timedelta(seconds=attempt))
            for number in numbers
            for attempt, on in enumerate((store, other_store, store, other_store))
        )
    )
    for index, number in enumerate(numbers):
        assert sum(results[index * 4 : index * 4 + 4]) == 1, number
    assert all([await store.last_text_to(number, "sales") for number in numbers])


async def test_count_texts_since(store: Store) -> None:
    def text(key: str, line: str, at: datetime) -> OutboxItem:
        return OutboxItem.new(
            kind=OutboxKind.SMS, idempotency_key=key, destination="+1555", payload={}, now=at, line=line
        )

    pending = text("pending", "sales", T0)
    sent = text("sent", "sales", T0 + timedelta(hours=1))
    failed = text("failed", "sales", T0 + timedelta(hours=1))
    cancelled = text("cancelled", "sales", T0 + timedelta(hours=1))
    other_line = text("other-line", "support", T0 + timedelta(hours=2))
    yesterday = text("yesterday", "sales", T0 - timedelta(days=1))
    hook = OutboxItem.new(
        kind=OutboxKind.WEBHOOK,
        idempotency_key="hook",
        destination="https://x",
        payload={},
        now=T0,
        line="sales",
    )
    for item in (pending, sent, failed, cancelled, other_line, yesterday, hook):
        await store.enqueue(item)
    await store.mark_sent(sent.id, "SM1", T0 + timedelta(hours=1))
    await store.mark_failed(failed.id, "invalid number", T0, None)
    await store.cancel(reason="operator", now=T0, item_id=cancelled.id)

    assert await store.count_texts_since("sales", T0) == 2
    assert await store.count_texts_since("support", T0) == 1
    assert await store.count_texts_since(None, T0) == 3
    assert await store.count_texts_since(None, T0 - timedelta(days=2)) == 4
    assert await store.count_texts_since("sales", T0 + timedelta(hours=1, microseconds=1)) == 0


async def test_state_is_shared_and_survives_reopen(store: Store, other_store: Store) -> None:
    assert await store.get_state("round_robin:support") is None
    await store.set_state("round_robin:support", "bob")
    await store.set_state("presence:alice", "away")
    assert await other_store.get_state("round_robin:support") == "bob"
    await other_store.set_state("round_robin:support", "carol")
    await other_store.set_state("presence:alice", None)
    assert await store.get_state("round_robin:support") == "carol"
    assert await store.get_state("presence:alice") is None


async def test_an_inbound_message_is_taken_once_across_hosts(store: Store, other_store: Store) -> None:
    results = await asyncio.gather(
        *(on.remember_inbound_message("twilio", "SM0001", T0) for on in (store, other_store, store))
    )
    assert sorted(results) == [False, False, True]
    assert await store.inbound_message_seen("twilio", "SM0001")
    assert not await store.inbound_message_seen("twilio", "SM0002")
    assert await other_store.remember_inbound_message("twilio", "SM0002", T0)
    assert await store.remember_inbound_message("relay", "SM0001", T0)  # another provider's ids


def _text(key: str, number: str, at: datetime) -> OutboxItem:
    return OutboxItem.new(
        kind=OutboxKind.SMS, idempotency_key=key, destination=number, payload={}, now=at, line="sales"
    )


async def test_a_text_and_its_window_are_stored_together_or_not_at_all(
    store: Store, other_store: Store
) -> None:
    first = _text("sms:call-1", "+15551230001", T0)
    assert await store.enqueue_text(first, DAY)
    assert await store.last_text_to("+15551230001", "sales") == T0

    # The window is taken: nothing is stored.
    second = _text("sms:call-2", "+15551230001", T0 + timedelta(hours=1))
    assert not await other_store.enqueue_text(second, DAY)
    # The text is known already (a replay): the window is not reserved again.
    again = _text("sms:call-1", "+15551230001", T0 + timedelta(days=2))
    assert not await store.enqueue_text(again, DAY)
    assert await store.last_text_to("+15551230001", "sales") == T0
    depth = await store.outbox_depth()
    assert depth["pending"] == 1

    # Another caller, concurrently from two hosts: one text, one window.
    racing = [_text(f"sms:race-{n}", "+15551230002", T0 + timedelta(seconds=n)) for n in range(6)]
    results = await asyncio.gather(
        *(on.enqueue_text(item, DAY) for item, on in zip(racing, [store, other_store] * 3, strict=True))
    )
    assert sum(results) == 1
    assert (await store.outbox_depth())["pending"] == 2
