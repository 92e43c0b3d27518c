"""Planning texts and webhooks for finished calls, on a real store: every rule that keeps a caller from
being texted leaves an outbox item with its reason."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import aiohttp
import pytest

from callkeeper.config.model import Config, QuietHours, TextLimits, Webhook
from callkeeper.followups import FollowupPlanner, FollowupService
from callkeeper.followups.planner import webhook_key, webhook_tag
from callkeeper.records import Direction, Outcome, Reason
from callkeeper.store import OutboxItem, OutboxKind, OutboxStatus, Store, open_store
from tests.followups.builders import (
    FRENCH_MOBILE,
    GB_LANDLINE,
    LINE_NUMBER,
    MOBILE,
    OTHER_MOBILE,
    SENDER,
    T0,
    FakeClock,
    call,
    config,
    followup_text,
    line,
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Planning:
    """A follow-up service that is not started: it plans and enqueues, nothing is sent."""

    def __init__(self, settings: Config, store: Store, session: aiohttp.ClientSession) -> None:
        self.clock = FakeClock()
        self.store = store
        self.service = FollowupService(settings, store, session=session, host="host-a", clock=self.clock)

    async def text_for(self, record_id: str, **changes: Any) -> OutboxItem | None:
        record = call(record_id, **changes)
        await self.service.on_call_finished(record)
        texts = [i for i in await self.store.outbox_for_call(record_id) if i.kind is OutboxKind.SMS]
        assert len(texts) <= 1
        return texts[0] if texts else None

    async def refusal(self, record_id: str, **changes: object) -> tuple[OutboxStatus, str | None]:
        item = await self.text_for(record_id, **changes)
        assert item is not None
        return item.status, item.last_error


@pytest.fixture
def planning(store: Store, session: aiohttp.ClientSession) -> Planning:
    return Planning(config(), store, session)


async def test_a_missed_mobile_caller_gets_one_pending_text(planning: Planning) -> None:
    item = await planning.text_for("call-1")
    assert item is not None
    assert item.status is OutboxStatus.PENDING
    assert item.idempotency_key == "sms:call-1"
    assert (item.destination, item.call_id, item.line, item.kind) == (
        MOBILE,
        "call-1",
        "sales",
        OutboxKind.SMS,
    )
    assert item.payload == {
        "provider": "twilio",
        "from": SENDER,
        "body": f"Missed you at sales ({LINE_NUMBER}), {MOBILE}.",
        "event": "missed",
        "call_started_at": "2026-03-02T09:59:20Z",
    }
    assert item.created_at == T0
    assert item.next_attempt_at == T0 + timedelta(seconds=60)


async def test_national_caller_ids_are_texted_in_e164(planning: Planning) -> None:
    item = await planning.text_for("call-1", caller="07400 123456")
    assert item is not None
    assert (item.status, item.destination) == (OutboxStatus.PENDING, MOBILE)


async def test_outbound_abandoned_texts_the_dialed_number(
    store: Store, session: aiohttp.ClientSession
) -> None:
    planning = Planning(config(), store, session)
    record = call(
        "out-1",
        direction=Direction.OUTBOUND,
        outcome=Outcome.ABANDONED,
        caller=LINE_NUMBER,
        dialed=OTHER_MOBILE,
    )
    await planning.service.on_call_finished(record)
    (item,) = await store.outbox_for_call("out-1")
    assert (item.destination, item.payload["event"], item.status) == (
        OTHER_MOBILE,
        "outbound_abandoned",
        OutboxStatus.PENDING,
    )
    assert item.payload["body"] == f"We tried to call you back from sales. Call us at {LINE_NUMBER}."


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"caller": "anonymous"}, "anonymous_caller"),
        ({"caller": "Withheld"}, "anonymous_caller"),
        ({"caller": ""}, "anonymous_caller"),
        ({"caller": "+447700900123"}, "invalid_number"),
        ({"caller": GB_LANDLINE}, "not_mobile"),
        ({"caller": "2001"}, "internal_extension"),
        ({"caller": "alice"}, "internal_extension"),
        (
            {"outcome": Outcome.ABANDONED, "reason": Reason.QUEUE_CALLER_HANGUP, "short": True},
            "short_abandon",
        ),
        ({"reason": Reason.DEAD_END}, "dead_end"),
        ({"outcome": Outcome.IGNORED, "reason": Reason.FAILURE}, "ignored"),
    ],
)
async def test_never_texted_callers_leave_a_cancelled_item(
    planning: Planning, changes: dict[str, object], reason: str
) -> None:
    assert await planning.refusal("call-1", **changes) == (OutboxStatus.CANCELLED, reason)
    assert (await planning.store.outbox_depth())["pending"] == 0


async def test_opted_out_callers_are_held(planning: Planning) -> None:
    await planning.store.set_opt_out(MOBILE, True, "sms:STOP", T0 - timedelta(days=3))
    assert await planning.refusal("call-1") == (OutboxStatus.HELD, "opted_out")
    # The held text is complete: an operator may release it once the caller opts in again.
    item = await planning.text_for("call-1")
    assert item is not None and item.payload["body"].startswith("Missed you at sales")


async def test_foreign_numbers_are_held_unless_their_country_is_allowed(
    store: Store, session: aiohttp.ClientSession
) -> None:
    planning = Planning(config(), store, session)
    assert await planning.refusal("call-1", caller=FRENCH_MOBILE) == (
        OutboxStatus.HELD,
        "country_not_allowed",
    )
    allowing = Planning(
        config(line(text=followup_text(allowed_countries=frozenset({"GB", "FR"})))), store, session
    )
    item = await allowing.text_for("call-2", caller=FRENCH_MOBILE)
    assert item is not None and item.status is OutboxStatus.PENDING


async def test_calls_that_get_no_text_leave_nothing(store: Store, session: aiohttp.ClientSession) -> None:
    only_missed = config(
        line(text=followup_text(on=frozenset({"missed"}))), line("quiet", followup_text=None)
    )
    planning = Planning(only_missed, store, session)
    assert await planning.text_for("answered", outcome=Outcome.ANSWERED, reason=Reason.ANSWERED) is None
    assert await planning.text_for("abandoned", outcome=Outcome.ABANDONED) is None
    assert await planning.text_for("untexted-line", line_name="quiet") is None
    assert await planning.text_for("no-line", line_name="gone") is None
    assert await store.outbox_depth() == dict.fromkeys(await store.outbox_depth(), 0)


async def test_a_caller_is_texted_once_per_window(planning: Planning) -> None:
    first = await planning.text_for("call-1")
    assert first is not None and first.status is OutboxStatus.PENDING
    planning.clock.advance(23 * 3600)
    assert await planning.refusal("call-2") == (OutboxStatus.CANCELLED, "texted_within_window")
    planning.clock.advance(3600)
    third = await planning.text_for("call-3")
    assert third is not None and third.status is OutboxStatus.PENDING


async def test_the_window_holds_across_hosts(store_url: str, session: aiohttp.ClientSession) -> None:
    stores = [await open_store(store_url, f"host-{n}") for n in range(4)]
    try:
        plannings = [Planning(config(), s, session) for s in stores]
        items = await asyncio.gather(*(p.text_for(f"call-{n}") for n, p in enumerate(plannings)))
        statuses = sorted((i.status.value, i.last_error) for i in items if i is not None)
        assert statuses == [("cancelled", "texted_within_window")] * 3 + [("pending", None)]
    finally:
        for opened in stores:
            await opened.close()


async def test_planning_a_call_twice_changes_nothing(planning: Planning) -> None:
    first = await planning.text_for("call-1")
    planning.clock.advance(5)
    again = await planning.text_for("call-1")
    assert again == first
    # The replay did not use up the caller's window again.
    assert await planning.store.last_text_to(MOBILE, "sales") == T0


async def test_a_failed_outbox_write_does_not_use_up_the_callers_window(
    planning: Planning, store_url: str
) -> None:
    """The daemon dies (here: the write fails) as the text is written: the caller's window must not
    stay reserved for a text the outbox never got, or planning the call again after the restart
    would cancel it as `texted_within_window`."""
    path = store_url.removeprefix("sqlite://")
    with sqlite3.connect(path) as database:
        database.execute(
            "CREATE TRIGGER no_texts BEFORE INSERT ON outbox WHEN NEW.kind = 'sms' "
            "BEGIN SELECT RAISE(ABORT, 'disk gone'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="disk gone"):
        await planning.text_for("call-1")
    with sqlite3.connect(path) as database:
        database.execute("DROP TRIGGER no_texts")
    assert await planning.store.last_text_to(MOBILE, "sales") is None
    item = await planning.text_for("call-1")
    assert item is not None and (item.status, item.last_error) == (OutboxStatus.PENDING, None)


def numbered(n: int) -> str:
    return f"+4474001234{n:02d}"


async def test_line_rate_limit_holds_texts(store: Store, session: aiohttp.ClientSession) -> None:
    planning = Planning(config(limits=TextLimits(per_line_per_hour=2)), store, session)
    results = [await planning.refusal(f"call-{n}", caller=numbered(n)) for n in range(3)]
    assert results == [(OutboxStatus.PENDING, None)] * 2 + [(OutboxStatus.HELD, "line_rate_limit")]
    planning.clock.advance(3601)
    assert await planning.refusal("call-9", caller=numbered(9)) == (OutboxStatus.PENDING, None)


async def test_global_rate_limit_counts_every_line(store: Store, session: aiohttp.ClientSession) -> None:
    two_lines = config(line(), line("support"), limits=TextLimits(global_per_hour=2))
    planning = Planning(two_lines, store, session)
    assert await planning.refusal("a", caller=numbered(1)) == (OutboxStatus.PENDING, None)
    assert await planning.refusal("b", caller=numbered(2), line_name="support") == (
        OutboxStatus.PENDING,
        None,
    )
    assert await planning.refusal("c", caller=numbered(3), line_name="support") == (
        OutboxStatus.HELD,
        "global_rate_limit",
    )


async def test_daily_cap(store: Store, session: aiohttp.ClientSession) -> None:
    planning = Planning(config(limits=TextLimits(daily_cap=3)), store, session)
    for n in range(3):
        assert await planning.refusal(f"call-{n}", caller=numbered(n)) == (OutboxStatus.PENDING, None)
        planning.clock.advance(2 * 3600)
    assert await planning.refusal("call-3", caller=numbered(3)) == (OutboxStatus.HELD, "daily_cap")
    planning.clock.advance(19 * 3600)
    assert await planning.refusal("call-4", caller=numbered(4)) == (OutboxStatus.PENDING, None)


async def test_held_texts_do_not_use_the_callers_window(store: Store, session: aiohttp.ClientSession) -> None:
    planning = Planning(config(limits=TextLimits(per_line_per_hour=0)), store, session)
    assert await planning.refusal("call-1") == (OutboxStatus.HELD, "line_rate_limit")
    assert await store.last_text_to(MOBILE, "sales") is None


async def test_quiet_hours_delay_the_text_to_their_end(store: Store, session: aiohttp.ClientSession) -> None:
    quiet = followup_text(quiet_hours=QuietHours(time(21), time(8)), delay_seconds=120)
    planning = Planning(config(line(text=quiet)), store, session)
    planning.clock.now = datetime(2026, 3, 2, 20, 59, tzinfo=UTC)  # 20:59 in London
    evening = await planning.text_for("call-1", ended_at=planning.clock.now)
    assert evening is not None
    assert evening.next_attempt_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    planning.clock.now = datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
    morning = await planning.text_for("call-2", caller=OTHER_MOBILE, ended_at=planning.clock.now)
    assert morning is not None
    assert morning.next_attempt_at == planning.clock.now + timedelta(seconds=120)


async def test_after_hours_calls_get_the_after_hours_text(
    store: Store, session: aiohttp.ClientSession
) -> None:
    planning = Planning(
        config(line(text=followup_text(messages={"after_hours": "Open {next_open}."}))), store, session
    )
    planning.clock.now = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)  # Friday 18:00 in London
    item = await planning.text_for("call-1", reason=Reason.AFTER_HOURS, ended_at=planning.clock.now)
    assert item is not None and item.payload["body"] == "Open Monday 09:00."


async def test_webhooks_per_subscribed_url(store: Store) -> None:
    hooks = (
        Webhook("https://a.example/hook", events=frozenset({"call.ended", "followup.sent"})),
        Webhook("https://b.example/hook", events=frozenset({"call.started"})),
    )
    planner = FollowupPlanner(config(webhooks=hooks), store)
    items = planner.plan_webhooks(
        "call.ended", subject="call-1", body={"x": 1}, now=T0, call_id="call-1", line="sales"
    )
    (item,) = items
    assert item.idempotency_key == webhook_key("call.ended", "call-1", "https://a.example/hook")
    assert item.idempotency_key.startswith("webhook:call.ended:call-1:")
    assert (item.destination, item.payload, item.kind) == (
        "https://a.example/hook",
        {"event": "call.ended", "body": {"x": 1}, "hook": webhook_tag("https://a.example/hook")},
        OutboxKind.WEBHOOK,
    )
    assert (
        planner.plan_webhooks("followup.failed", subject="s", body={}, now=T0, call_id=None, line=None) == []
    )
    assert webhook_key("call.ended", "call-1", "https://b.example/hook") != item.idempotency_key
