"""FollowupService end to end: a real store, the worker, and a local Twilio and webhook receiver."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

import aiohttp
import pytest
from aiohttp import test_utils

from callkeeper.config.model import Config, QuietHours, Secret, Webhook
from callkeeper.followups import FollowupService, OutboxSettings
from callkeeper.records import Direction, Outcome, Reason
from callkeeper.store import OutboxItem, OutboxKind, OutboxStatus, Store
from callkeeper.store.base import shown_url
from tests.followups.builders import (
    LINE_NUMBER,
    MOBILE,
    SENDER,
    T0,
    FakeClock,
    call,
    config,
    eventually,
    followup_text,
    line,
    twilio,
)
from tests.followups.fake_twilio import FakeTwilio, sid_for, signed_by

HOOK_SECRET = "hook-s3cret"
SETTINGS = OutboxSettings(
    lease_seconds=5.0, send_timeout_seconds=2.0, poll_seconds=0.01, max_attempts=3, retry_initial_seconds=5.0
)


@dataclass
class Running:
    service: FollowupService
    clock: FakeClock
    twilio: FakeTwilio
    store: Store

    async def text(self, call_id: str = "call-1") -> OutboxItem:
        (item,) = [i for i in await self.store.outbox_for_call(call_id) if i.kind is OutboxKind.SMS]
        return item

    async def text_status(self, status: OutboxStatus, error: str | None = None) -> bool:
        text = await self.text()
        return text.status is status and (error is None or text.last_error == error)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio()
    server = test_utils.TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def wired(url: str) -> Config:
    hooks = (
        Webhook(
            f"{url}/hooks/crm",
            secret=Secret(HOOK_SECRET),
            events=frozenset({"call.ended", "followup.sent", "followup.failed"}),
        ),
    )
    return config(providers={"twilio": twilio(url)}, webhooks=hooks)


@pytest.fixture
async def running(
    store: Store, session: aiohttp.ClientSession, receiver: tuple[FakeTwilio, str]
) -> AsyncIterator[Running]:
    fake, url = receiver
    clock = FakeClock()
    service = FollowupService(
        wired(url), store, session=session, host="host-a", clock=clock, settings=SETTINGS
    )
    service.start()
    yield Running(service, clock, fake, store)
    await service.close()


async def test_a_missed_call_is_texted_after_the_delay_and_reported(running: Running) -> None:
    await running.service.on_call_finished(call())
    await eventually(lambda: running.twilio.hook_bodies("crm"))
    (ended,) = running.twilio.hook_bodies("crm")
    assert ended["event"] == "call.ended"
    assert ended["call"]["id"] == "call-1"
    assert [(f["kind"], f["status"], f["to"]) for f in ended["call"]["followups"]] == [
        ("sms", "pending", MOBILE)
    ]
    assert running.twilio.accepted == {}

    running.clock.advance(60)
    await eventually(lambda: running.text_status(OutboxStatus.SENT))
    assert running.twilio.accepted == {
        "sms:call-1": {
            "To": MOBILE,
            "From": SENDER,
            "Body": f"Missed you at sales (+442079460000), {MOBILE}.",
        }
    }
    text = await running.text()
    assert (text.provider_id, text.sent_at) == (sid_for("sms:call-1"), running.clock.now)
    await eventually(lambda: len(running.twilio.hooks) == 2)
    sent = running.twilio.hook_bodies("crm")[1]
    assert sent["event"] == "followup.sent"
    assert (sent["call_id"], sent["followup"]["status"], sent["followup"]["provider_id"]) == (
        "call-1",
        "sent",
        sid_for("sms:call-1"),
    )
    for _, headers, body in running.twilio.hooks:
        assert signed_by(HOOK_SECRET, headers, body)
        assert headers["Idempotency-Key"].startswith("webhook:")
    await eventually(lambda: running.service.webhooks_sent_total == 2)
    assert (running.service.texts_sent_total, running.service.outbox_failures_total) == (1, 0)
    followups = await running.service.followups_for("call-1")
    assert sorted((f.kind, f.status) for f in followups) == [
        ("sms", "sent"),
        ("webhook", "sent"),
        ("webhook", "sent"),
    ]


async def test_answered_on_a_new_call_within_the_delay_cancels_the_text(running: Running) -> None:
    await running.service.on_call_finished(call())
    running.clock.advance(30)
    assert await running.service.on_call_answered("07400 123456", running.clock.now) == 1
    assert (await running.text()).status is OutboxStatus.CANCELLED
    assert (await running.text()).last_error == "answered_on_later_call"
    assert await running.service.on_call_answered(MOBILE, running.clock.now) == 0
    running.clock.advance(60)
    await eventually(lambda: running.twilio.hook_bodies("crm"))
    assert running.twilio.requests == []


async def test_an_answered_call_seen_only_in_the_store_cancels_at_send_time(running: Running) -> None:
    await running.service.on_call_finished(call())
    # Another host answered the caller's next call: this host only learns it from the store.
    callback = call(
        "call-2",
        outcome=Outcome.ANSWERED,
        reason=Reason.ANSWERED,
        started_at=T0 + timedelta(seconds=20),
        ended_at=T0 + timedelta(seconds=50),
        answered_by="alice",
    )
    await running.store.save_call(callback)
    running.clock.advance(60)
    await eventually(lambda: running.text_status(OutboxStatus.CANCELLED))
    assert (await running.text()).last_error == "answered_on_later_call"
    assert running.twilio.requests == []


async def test_an_earlier_answered_call_does_not_cancel(running: Running) -> None:
    earlier = call(
        "call-0",
        outcome=Outcome.ANSWERED,
        reason=Reason.ANSWERED,
        started_at=T0 - timedelta(hours=1),
        ended_at=T0 - timedelta(minutes=50),
    )
    await running.store.save_call(earlier)
    await running.service.on_call_finished(call())
    assert await running.service.on_call_answered(MOBILE, T0 - timedelta(minutes=5)) == 0
    running.clock.advance(60)
    await eventually(lambda: running.text_status(OutboxStatus.SENT))


async def test_a_callback_the_caller_did_not_answer_does_not_cancel(running: Running) -> None:
    """The dialer sets `answered_by` once the user's phone answers, before the caller is even rung."""
    await running.service.on_call_finished(call())
    callback = call(
        "callback-1",
        direction=Direction.OUTBOUND,
        caller=LINE_NUMBER,
        dialed=MOBILE,
        outcome=Outcome.ABANDONED,
        reason=Reason.PROGRESSIVE_NO_ANSWER,
        started_at=T0 + timedelta(seconds=20),
        ended_at=T0 + timedelta(seconds=50),
        answered_by="alice",
    )
    await running.store.save_call(callback)
    running.clock.advance(60)
    await eventually(lambda: running.text_status(OutboxStatus.SENT))


async def test_opting_out_before_the_send_holds_the_text(running: Running) -> None:
    await running.service.on_call_finished(call())
    await running.store.set_opt_out(MOBILE, True, "sms:STOP", T0)
    running.clock.advance(60)
    await eventually(lambda: running.text_status(OutboxStatus.HELD))
    assert (await running.text()).last_error == "opted_out"
    assert running.twilio.requests == []


async def test_a_rejected_text_fails_for_good_and_is_reported(running: Running) -> None:
    running.twilio.status = 400
    await running.service.on_call_finished(call())
    running.clock.advance(60)
    await eventually(lambda: running.text_status(OutboxStatus.FAILED))
    assert (await running.text()).last_error == "HTTP 400: Twilio says no"
    await eventually(lambda: len(running.twilio.hook_bodies("crm")) == 2)
    failed = running.twilio.hook_bodies("crm")[1]
    assert (failed["event"], failed["followup"]["status"], failed["followup"]["detail"]) == (
        "followup.failed",
        "failed",
        "HTTP 400: Twilio says no",
    )
    assert running.service.outbox_failures_total == 1


async def test_twilio_outages_are_retried_with_the_same_token(running: Running) -> None:
    running.twilio.status = 503
    await running.service.on_call_finished(call())
    running.clock.advance(60)
    await eventually(lambda: running.twilio.requests == ["sms:call-1"])
    await eventually(lambda: running.text_status(OutboxStatus.PENDING))
    running.twilio.status = 201
    running.clock.now = (await running.text()).next_attempt_at
    running.service.worker.wake()
    await eventually(lambda: running.text_status(OutboxStatus.SENT))
    assert running.twilio.requests == ["sms:call-1", "sms:call-1"]
    assert running.service.outbox_failures_total == 1


async def test_a_dead_webhook_never_holds_up_texts(
    store: Store, session: aiohttp.ClientSession, receiver: tuple[FakeTwilio, str]
) -> None:
    fake, url = receiver
    dead = (Webhook("http://127.0.0.1:9/hooks/dead", events=frozenset({"call.ended"})),)
    clock = FakeClock()
    service = FollowupService(
        config(providers={"twilio": twilio(url)}, webhooks=dead),
        store,
        session=session,
        host="host-a",
        clock=clock,
        settings=SETTINGS,
    )
    service.start()
    try:
        await service.on_call_finished(call())
        clock.advance(60)
        running = Running(service, clock, fake, store)
        await eventually(lambda: running.text_status(OutboxStatus.SENT))
        (hook,) = [i for i in await store.outbox_for_call("call-1") if i.kind is OutboxKind.WEBHOOK]
        assert hook.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
        assert hook.last_error is None or hook.last_error.startswith("no response: ")
    finally:
        await service.close()


async def test_a_provider_removed_from_the_config_fails_the_text(
    store: Store, session: aiohttp.ClientSession, receiver: tuple[FakeTwilio, str]
) -> None:
    _, url = receiver
    clock = FakeClock()
    planner = FollowupService(wired(url), store, session=session, host="host-a", clock=clock)
    await planner.on_call_finished(call())
    without = FollowupService(
        config(providers={}), store, session=session, host="host-a", clock=clock, settings=SETTINGS
    )
    without.start()
    try:
        clock.advance(60)
        await eventually(
            lambda: Running(without, clock, FakeTwilio(), store).text_status(OutboxStatus.FAILED)
        )
        assert (await Running(without, clock, FakeTwilio(), store).text()).last_error == (
            "no sms provider 'twilio' is configured"
        )
    finally:
        await without.close()


async def test_a_text_waiting_for_a_retry_is_cancelled_by_an_answered_call(running: Running) -> None:
    running.twilio.status = 503
    await running.service.on_call_finished(call())
    running.clock.advance(60)
    await eventually(lambda: running.twilio.requests)
    await eventually(lambda: running.text_status(OutboxStatus.PENDING))
    assert await running.service.on_call_answered(MOBILE, running.clock.now) == 1
    assert (await running.text()).status is OutboxStatus.CANCELLED


async def test_a_text_due_in_quiet_hours_waits_for_their_end(
    store: Store, session: aiohttp.ClientSession, receiver: tuple[FakeTwilio, str]
) -> None:
    fake, url = receiver
    quiet = line(text=followup_text(quiet_hours=QuietHours(time(21), time(8))))
    clock = FakeClock()
    service = FollowupService(
        config(quiet, providers={"twilio": twilio(url)}),
        store,
        session=session,
        host="host-a",
        clock=clock,
        settings=SETTINGS,
    )
    await service.on_call_finished(call())
    clock.now = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # the worker only gets to it at 22:00 London
    service.start()
    try:
        running = Running(service, clock, fake, store)
        await eventually(lambda: running.text_status(OutboxStatus.PENDING, error="quiet_hours"))
        assert (await running.text()).next_attempt_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
        assert fake.requests == []
        clock.now = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
        service.worker.wake()
        await eventually(lambda: running.text_status(OutboxStatus.SENT))
    finally:
        await service.close()


async def test_call_started_webhooks(
    store: Store, session: aiohttp.ClientSession, receiver: tuple[FakeTwilio, str]
) -> None:
    fake, url = receiver
    hooks = (Webhook(f"{url}/hooks/live", events=frozenset({"call.started"})),)
    service = FollowupService(
        config(webhooks=hooks), store, session=session, host="host-a", clock=FakeClock(), settings=SETTINGS
    )
    service.start()
    try:
        in_progress = replace(call(), ended_at=None, outcome=None, reason=None)
        await service.on_call_started(in_progress)
        await service.on_call_started(in_progress)
        await service.on_call_finished(call())
        await eventually(lambda: fake.hook_bodies("live"))
        await asyncio.sleep(0.05)
        (started,) = fake.hook_bodies("live")
        assert (started["event"], started["call"]["id"], started["call"]["outcome"]) == (
            "call.started",
            "call-1",
            None,
        )
        assert "X-Callkeeper-Signature" not in fake.hooks[0][1]
    finally:
        await service.close()


async def test_a_webhook_token_in_the_url_is_neither_shown_nor_stored(
    store: Store, store_url: str, session: aiohttp.ClientSession, receiver: tuple[FakeTwilio, str]
) -> None:
    fake, url = receiver
    hooks = (Webhook(f"{url}/hooks/crm?token=t0ken-in-query"),)
    service = FollowupService(
        config(webhooks=hooks), store, session=session, host="host-a", clock=FakeClock(), settings=SETTINGS
    )
    service.start()
    try:
        await service.on_call_finished(call())
        await eventually(lambda: fake.hook_bodies("crm?token=t0ken-in-query"))
        (hook,) = [f for f in await service.followups_for("call-1") if f.kind == "webhook"]
        assert (hook.to, hook.status) == (f"{url}/hooks/crm", "sent")
    finally:
        await service.close()
    with sqlite3.connect(store_url.removeprefix("sqlite://")) as database:
        stored = database.execute("SELECT destination, payload FROM outbox").fetchall()
    assert stored
    assert "t0ken" not in repr(stored)


def test_webhook_urls_are_shown_without_credentials_query_or_fragment() -> None:
    assert (
        shown_url("https://crm:pa55@crm.example.com:8443/hook?token=x#y")
        == "https://crm.example.com:8443/hook"
    )
    item = OutboxItem.new(
        kind=OutboxKind.WEBHOOK,
        idempotency_key="k",
        destination="https://h.example/x?token=t",
        payload={},
        now=T0,
    )
    assert item.as_followup().to == "https://h.example/x"  # an item stored before the URL was shortened
