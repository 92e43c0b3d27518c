"""The missed-call inbox in the store, on SQLite and PostgreSQL: grouping, attempts, visibility, callbacks,
auto-resolve, handling, texts, the change counter and the report's calls."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from callkeeper.inbox.model import InboxAlreadyHandled, InboxFilter, InboxItem, InboxState
from callkeeper.records import CallRecord, Direction, Outcome, Reason, VoicemailResult
from callkeeper.store import OutboxItem, OutboxKind, Store
from tests.store.conftest import raw_sql

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINE_NUMBER = "+15559870000"
CALLER = "+15551230001"


def inbound(
    call_id: str,
    minute: float,
    outcome: Outcome = Outcome.MISSED,
    reason: Reason = Reason.RING_GROUP_NO_ANSWER,
    *,
    caller: str = CALLER,
    line: str | None = "sales",
    seconds: float = 30,
    **changes: object,
) -> CallRecord:
    started = T0 + timedelta(minutes=minute)
    record = CallRecord(
        id=call_id,
        direction=Direction.INBOUND,
        line=line,
        caller=caller,
        dialed=LINE_NUMBER,
        started_at=started,
        ended_at=started + timedelta(seconds=seconds),
        outcome=outcome,
        reason=reason,
        answered_by="alice" if outcome is Outcome.ANSWERED else None,
        host="host-a",
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def outbound(
    call_id: str,
    minute: float,
    outcome: Outcome,
    reason: Reason,
    *,
    contact: str = CALLER,
    answered_by: str | None = "alice",
) -> CallRecord:
    """A dialer call; `answered_by` is set once the user's phone answered, whatever the contact did."""
    started = T0 + timedelta(minutes=minute)
    return CallRecord(
        id=call_id,
        direction=Direction.OUTBOUND,
        line="sales",
        caller=LINE_NUMBER,
        dialed=contact,
        started_at=started,
        ended_at=started + timedelta(seconds=40),
        outcome=outcome,
        reason=reason,
        answered_by=answered_by,
        host="host-a",
    )


async def open_items(store: Store, **filters: object) -> list[tuple[str, str, int]]:
    items = await store.inbox_items(InboxFilter(**filters))  # type: ignore[arg-type]
    return [(item.caller, item.call_id, item.attempts) for item in items]


async def test_one_item_per_caller_and_line_newest_first_with_attempts(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await store.save_call(inbound("b1", 1, caller="+15551230002"))
    await store.save_call(inbound("a2", 2, Outcome.ABANDONED, Reason.QUEUE_CALLER_HANGUP))
    await store.save_call(inbound("a3", 3, line="support"))
    assert await open_items(store) == [(CALLER, "a3", 1), (CALLER, "a2", 2), ("+15551230002", "b1", 1)]

    item = await store.inbox_item("a1")
    assert item is not None
    assert (item.call_id, item.call_ids, item.outcome, item.reason) == (
        "a2",
        ("a1", "a2"),
        Outcome.ABANDONED,
        Reason.QUEUE_CALLER_HANGUP,
    )
    assert (item.line, item.direction, item.state, item.started_at) == (
        "sales",
        Direction.INBOUND,
        InboxState.OPEN,
        T0 + timedelta(minutes=2),
    )
    assert item.reason_text == "Hung up while waiting in the queue"
    assert item.waited_seconds == 30.0
    assert item.to_json()["call_ids"] == ["a1", "a2"]


async def test_calls_ending_out_of_order_keep_the_latest_as_the_items_call(store: Store) -> None:
    await store.save_call(inbound("late", 5))
    await store.save_call(inbound("early", 1, Outcome.ABANDONED, Reason.FISHING_HANGUP, seconds=600))
    item = await store.inbox_item("early")
    assert item is not None
    assert (item.call_id, item.reason, item.attempts) == ("late", Reason.RING_GROUP_NO_ANSWER, 2)


async def test_calls_without_a_line_in_progress_or_answered_open_nothing(store: Store) -> None:
    await store.save_call(inbound("unknown", 0, Outcome.IGNORED, Reason.UNKNOWN_NUMBER, line=None))
    await store.save_call(replace(inbound("ringing", 1), ended_at=None, outcome=None, reason=None))
    await store.save_call(inbound("talked", 2, Outcome.ANSWERED, Reason.ANSWERED))
    assert await open_items(store, show_short_abandons=True, show_ignored=True) == []
    assert await store.inbox_version() == 0


async def test_saving_a_final_record_again_counts_it_once(store: Store) -> None:
    record = inbound("a1", 0, voicemail=VoicemailResult(True, 9, "1000@default"))
    for _ in range(3):
        await store.save_call(record)
    assert await open_items(store) == [(CALLER, "a1", 1)]
    await store.mark_inbox_handled("a1", "bob", None, T0 + timedelta(hours=1))
    await store.save_call(record)  # e.g. a restart closing it again: no new item
    assert await open_items(store) == []


async def test_short_abandons_and_ignored_calls_are_hidden_unless_asked(store: Store) -> None:
    await store.save_call(inbound("short", 0, Outcome.ABANDONED, Reason.WELCOME_HANGUP, short=True))
    await store.save_call(inbound("dead", 1, Outcome.IGNORED, Reason.DEAD_END, caller="+15551230002"))
    await store.save_call(inbound("real", 2, caller="+15551230003"))
    assert [c for c, _, _ in await open_items(store)] == ["+15551230003"]
    assert [c for c, _, _ in await open_items(store, show_short_abandons=True)] == ["+15551230003", CALLER]
    assert [c for c, _, _ in await open_items(store, show_ignored=True)] == ["+15551230003", "+15551230002"]
    short = await store.inbox_item("short")
    assert short is not None and short.short and not short.ignored
    assert short.reason_text == "Hung up within seconds"

    # A real missed call of the same caller makes the item worth showing.
    await store.save_call(inbound("short2", 3))
    assert (CALLER, "short2", 2) in await open_items(store)


async def test_filters(store: Store) -> None:
    await store.save_call(inbound("a", 0))
    await store.save_call(inbound("b", 60 * 24, Outcome.ABANDONED, Reason.IVR_HANGUP, caller="+4930123456"))
    await store.save_call(inbound("c", 60 * 48, line="support", caller="+15551239999"))

    def ids(items: list[InboxItem]) -> list[str]:
        return [item.call_id for item in items]

    assert ids(await store.inbox_items(InboxFilter(lines=frozenset({"support"})))) == ["c"]
    assert ids(await store.inbox_items(InboxFilter(lines=frozenset()))) == []
    assert ids(await store.inbox_items(InboxFilter(outcome=Outcome.ABANDONED))) == ["b"]
    assert ids(await store.inbox_items(InboxFilter(reason=Reason.RING_GROUP_NO_ANSWER))) == ["c", "a"]
    day = T0.date()
    assert ids(await store.inbox_items(InboxFilter(since=day + timedelta(days=1)))) == ["c", "b"]
    assert ids(await store.inbox_items(InboxFilter(until=day + timedelta(days=1)))) == ["b", "a"]
    assert ids(await store.inbox_items(InboxFilter(since=day, until=day))) == ["a"]
    assert ids(await store.inbox_items(InboxFilter(number="0123"))) == ["b"]
    assert ids(await store.inbox_items(InboxFilter(number="%"))) == []
    assert ids(await store.inbox_items(InboxFilter(limit=1))) == ["c"]
    assert ids(await store.inbox_items(InboxFilter(state=InboxState.HANDLED))) == []


async def test_voicemail_and_texts_of_the_items_calls(store: Store) -> None:
    # The follow-up text is planned before the final record is stored (service/records.py).
    text = OutboxItem.new(
        kind=OutboxKind.SMS,
        idempotency_key="sms:a1",
        destination=CALLER,
        payload={"body": "Sorry we missed you"},
        now=T0 + timedelta(minutes=1),
        call_id="a1",
        line="sales",
    )
    await store.enqueue(text)
    await store.save_call(inbound("a1", 0, voicemail=VoicemailResult(True, 12, "1000@default")))
    await store.save_call(inbound("a2", 1, voicemail=VoicemailResult(False, 0, "1000@default")))
    (item,) = await store.inbox_items(InboxFilter())
    assert item.followup_text is not None
    assert (item.followup_text.status, item.followup_text.sent_at) == ("pending", None)

    await store.mark_sent(text.id, "SM1", T0 + timedelta(minutes=2))  # the list shows the text as it is now
    (item,) = await store.inbox_items(InboxFilter())
    assert item.voicemail is not None
    assert (item.voicemail.call_id, item.voicemail.seconds, item.voicemail.mailbox) == (
        "a1",
        12,
        "1000@default",
    )
    assert item.followup_text is not None
    assert (item.followup_text.call_id, item.followup_text.to, item.followup_text.status) == (
        "a1",
        CALLER,
        "sent",
    )
    assert item.followup_text.sent_at == T0 + timedelta(minutes=2)
    assert item.followup_text.body == "Sorry we missed you"


async def test_waited_seconds_leave_out_the_message(store: Store) -> None:
    await store.save_call(inbound("a1", 0, seconds=50, voicemail=VoicemailResult(True, 20, "1000@default")))
    item = await store.inbox_item("a1")
    assert item is not None and item.waited_seconds == 30.0


async def test_an_answered_call_resolves_the_numbers_items_on_its_line(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await store.save_call(inbound("a2", 1))
    await store.save_call(inbound("other-line", 2, line="support"))
    await store.save_call(inbound("other-caller", 3, caller="+15551230002"))
    before = await store.inbox_version()
    await store.save_call(inbound("talk", 10, Outcome.ANSWERED, Reason.ANSWERED, answered_by="carol"))
    assert await store.inbox_version() > before

    item = await store.inbox_item("a1")
    assert item is not None
    assert (item.state, item.resolved_by, item.handled_by, item.note) == (
        InboxState.HANDLED,
        "talk",
        "carol",
        None,
    )
    assert item.handled_at == T0 + timedelta(minutes=10, seconds=30)
    assert [c for c, _, _ in await open_items(store)] == ["+15551230002", CALLER]  # other caller, other line
    handled = await store.inbox_items(InboxFilter(state=InboxState.HANDLED))
    assert [i.call_id for i in handled] == ["a2"]

    # The next missed call opens a new item.
    await store.save_call(inbound("a3", 20))
    again = await store.inbox_item("a3")
    assert again is not None and (again.state, again.attempts, again.call_ids) == (
        InboxState.OPEN,
        1,
        ("a3",),
    )


async def test_an_answered_call_that_started_before_the_missed_one_resolves_nothing(store: Store) -> None:
    await store.save_call(inbound("missed", 5))
    await store.save_call(inbound("earlier-talk", 1, Outcome.ANSWERED, Reason.ANSWERED, seconds=600))
    item = await store.inbox_item("missed")
    assert item is not None and item.state is InboxState.OPEN


async def test_an_answered_outbound_call_to_the_number_resolves_it(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await store.save_call(outbound("out", 5, Outcome.ANSWERED, Reason.ANSWERED))
    item = await store.inbox_item("a1")
    assert item is not None and (item.state, item.resolved_by) == (InboxState.HANDLED, "out")


async def test_an_unanswered_dialer_contact_is_an_item_of_its_own(store: Store) -> None:
    await store.save_call(
        outbound("out", 0, Outcome.ABANDONED, Reason.PROGRESSIVE_NO_ANSWER, contact="+15557770000")
    )
    (item,) = await store.inbox_items(InboxFilter())
    assert (item.caller, item.direction, item.reason_text) == (
        "+15557770000",
        Direction.OUTBOUND,
        "We called; they did not answer",
    )


async def test_a_callback_that_reaches_the_caller_resolves_the_item(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    assert await store.link_callback("a1", "cb1", "bob")
    assert not await store.link_callback("nope", "cb2", "bob")
    # The user answers, the contact is ringing: the record is not final yet.
    await store.save_call(
        replace(outbound("cb1", 5, Outcome.ANSWERED, Reason.ANSWERED), ended_at=None, outcome=None)
    )
    assert (await open_items(store)) == [(CALLER, "a1", 1)]
    await store.save_call(outbound("cb1", 5, Outcome.ANSWERED, Reason.ANSWERED, answered_by="bob"))
    item = await store.inbox_item("cb1")
    assert item is not None
    assert (item.state, item.resolved_by, item.handled_by, item.call_ids) == (
        InboxState.HANDLED,
        "cb1",
        "bob",
        ("a1", "cb1"),
    )


async def test_a_callback_that_does_not_reach_the_caller_counts_an_attempt(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await store.link_callback("a1", "cb1", "alice")
    # The user answered (answered_by set), the caller did not: still open, one more attempt.
    await store.save_call(outbound("cb1", 5, Outcome.ABANDONED, Reason.PROGRESSIVE_NO_ANSWER))
    await store.save_call(outbound("cb1", 5, Outcome.ABANDONED, Reason.PROGRESSIVE_NO_ANSWER))
    await store.link_callback("a1", "cb2", "alice")
    # The user's own phone did not answer: the caller was never rung, no attempt.
    await store.save_call(
        outbound("cb2", 6, Outcome.IGNORED, Reason.PROGRESSIVE_USER_NO_ANSWER, answered_by=None)
    )
    item = await store.inbox_item("a1")
    assert item is not None
    assert (item.state, item.attempts, item.call_id, item.reason) == (
        InboxState.OPEN,
        2,
        "cb2",
        Reason.PROGRESSIVE_USER_NO_ANSWER,
    )
    assert item.call_ids == ("a1", "cb1", "cb2")
    assert item.started_at == T0  # still ordered by the caller's latest call


async def test_marking_handled(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await store.save_call(inbound("a2", 1))
    at = T0 + timedelta(hours=2)
    item = await store.mark_inbox_handled("a1", "bob", "called from my desk", at)
    assert item is not None
    assert (item.state, item.handled_by, item.handled_at, item.note, item.resolved_by) == (
        InboxState.HANDLED,
        "bob",
        at,
        "called from my desk",
        None,
    )
    with pytest.raises(InboxAlreadyHandled) as raised:
        await store.mark_inbox_handled("a2", "carol", None, at + timedelta(minutes=1))
    assert raised.value.item.handled_by == "bob"
    assert await store.mark_inbox_handled("unknown", "bob", None, at) is None
    assert await open_items(store) == []


async def test_the_version_grows_with_every_change_seen_by_every_host(
    store: Store, other_store: Store
) -> None:
    seen = [await other_store.inbox_version()]
    await store.save_call(inbound("a1", 0))
    seen.append(await other_store.inbox_version())
    await store.save_call(inbound("a2", 1))
    seen.append(await other_store.inbox_version())
    await other_store.mark_inbox_handled("a1", "bob", None, T0 + timedelta(hours=1))
    seen.append(await store.inbox_version())
    assert seen == sorted(set(seen)), seen
    item = await store.inbox_item("a2")
    assert item is not None and item.handled_by == "bob"


async def test_concurrent_hosts_keep_one_item_per_caller(store: Store, other_store: Store) -> None:
    await asyncio.gather(
        *((store if n % 2 else other_store).save_call(inbound(f"c{n}", n / 10)) for n in range(20))
    )
    assert [(c, n) for c, _, n in await open_items(store)] == [(CALLER, 20)]
    assert await store.inbox_version() == 20


async def test_report_calls(store: Store) -> None:
    await store.save_call(inbound("m", 0, voicemail=VoicemailResult(True, 5, "1000@default")))
    await store.save_call(
        inbound("s", 1, Outcome.ABANDONED, Reason.WELCOME_HANGUP, caller="+15550000002", short=True)
    )
    await store.save_call(inbound("x", 2, line="support"))
    await store.save_call(outbound("out", 10, Outcome.ANSWERED, Reason.ANSWERED))
    await store.save_call(replace(inbound("live", 3), ended_at=None, outcome=None, reason=None))
    calls = await store.report_calls(T0, T0 + timedelta(days=1), frozenset({"sales"}))
    by_start = {call.started_at: call for call in calls}
    assert sorted(by_start) == [T0, T0 + timedelta(minutes=1)]  # inbound, ended, of sales only
    missed = by_start[T0]
    assert (missed.outcome, missed.voicemail, missed.called_back_at) == (
        Outcome.MISSED,
        True,
        T0 + timedelta(minutes=10),
    )
    assert by_start[T0 + timedelta(minutes=1)].short
    assert len(await store.report_calls(T0, T0 + timedelta(days=1), None)) == 3
    assert await store.report_calls(T0, T0 + timedelta(days=1), frozenset()) == []


async def test_calls_of_a_number(store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await store.save_call(inbound("b1", 1, caller="+15550000002"))
    await store.save_call(outbound("out", 2, Outcome.ANSWERED, Reason.ANSWERED))
    assert [call.id for call in await store.calls_of_number(CALLER, 10)] == ["out", "a1"]
    assert [call.id for call in await store.calls_of_number(CALLER, 1)] == ["out"]


async def test_outbox_for_calls_in_one_query(store: Store) -> None:
    for call_id in ("a", "b"):
        await store.enqueue(
            OutboxItem.new(
                kind=OutboxKind.SMS,
                idempotency_key=f"sms:{call_id}",
                destination=CALLER,
                payload={},
                now=T0,
                call_id=call_id,
            )
        )
    found = await store.outbox_for_calls(["a", "b", "c"])
    assert sorted(found) == ["a", "b"] and [item.call_id for item in found["a"]] == ["a"]
    assert await store.outbox_for_calls([]) == {}


async def test_list_calls_until_is_exclusive(store: Store) -> None:
    await store.save_call(inbound("a", 0))
    await store.save_call(inbound("b", 10))
    listed = await store.list_calls(until=T0 + timedelta(minutes=10))
    assert [call.id for call in listed] == ["a"]


async def test_a_record_the_inbox_cannot_take_is_stored_all_the_same(store: Store, store_url: str) -> None:
    await raw_sql(store_url, "DROP TABLE inbox_version")
    with capture_logs() as logs:
        await store.save_call(inbound("a1", 0))
    assert await store.get_call("a1") == inbound("a1", 0)
    assert [entry["event"] for entry in logs] == ["inbox_update_failed"]


async def test_two_users_marking_at_once_on_two_hosts_one_wins(store: Store, other_store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    outcomes = await asyncio.gather(
        *(
            host.mark_inbox_handled("a1", user, None, T0 + timedelta(hours=1))
            for host, user in ((store, "alice"), (other_store, "bob")) * 3
        ),
        return_exceptions=True,
    )
    winners = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(outcome, InboxAlreadyHandled) for outcome in outcomes if outcome not in winners)
    item = await store.inbox_item("a1")
    assert item is not None and winners[0] is not None and item.handled_by == winners[0].handled_by


async def test_an_answered_call_on_another_host_resolves_the_item(store: Store, other_store: Store) -> None:
    await store.save_call(inbound("a1", 0))
    await other_store.save_call(
        replace(inbound("talk", 5, Outcome.ANSWERED, Reason.ANSWERED, answered_by="dave"), host="host-b")
    )
    item = await store.inbox_item("a1")
    assert item is not None and (item.state, item.resolved_by, item.handled_by) == (
        InboxState.HANDLED,
        "talk",
        "dave",
    )
