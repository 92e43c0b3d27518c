from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from callkeeper.records import (
    CallRecord,
    Direction,
    Followup,
    Outcome,
    Reason,
    Step,
    VoicemailResult,
)
from callkeeper.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def call(call_id: str, started_at: datetime, **changes: object) -> CallRecord:
    record = CallRecord(
        id=call_id,
        direction=Direction.INBOUND,
        line="sales",
        caller="+15551230001",
        dialed="+15559870000",
        started_at=started_at,
        host="host-a",
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def ended(record: CallRecord, outcome: Outcome, reason: Reason, after: timedelta) -> CallRecord:
    return replace(record, ended_at=record.started_at + after, outcome=outcome, reason=reason)


async def test_record_round_trips_exactly(store: Store) -> None:
    record = CallRecord(
        id="1736067600.42",
        direction=Direction.INBOUND,
        line="support",
        caller="+4915112345678",
        dialed="+493012345",
        started_at=datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC),
        ended_at=datetime(2026, 1, 5, 9, 1, 30, 654321, tzinfo=UTC),
        outcome=Outcome.MISSED,
        reason=Reason.RING_GROUP_NO_ANSWER,
        short=True,
        answered_by=None,
        voicemail=VoicemailResult(left=True, seconds=17, mailbox="support@default"),
        steps=(
            Step("welcome", T0, "sound:welcome"),
            Step("ring_group", T0 + timedelta(seconds=5), "support-team"),
        ),
        followups=(
            Followup(
                kind="sms", status="sent", to="+4915112345678", created_at=T0, sent_at=T0, provider_id="p-1"
            ),
        ),
        end_observed=False,
        host="pbx-1",
        extra={"note": "Grüße, ☎", "nested": {"list": [1, 2.5, None, True]}, "big": 2**53 + 1},
    )
    await store.save_call(record)
    loaded = await store.get_call(record.id)
    assert loaded is not None
    assert loaded.to_json() == record.to_json()
    assert loaded == record
    assert await store.get_call("no-such-call") is None


async def test_save_call_upserts_and_never_reverts_an_ended_call(store: Store) -> None:
    started = call("c1", T0)
    await store.save_call(started)
    with_step = started.with_step(Step("ivr", T0 + timedelta(seconds=2)))
    await store.save_call(with_step)
    assert await store.get_call("c1") == with_step
    final = ended(with_step, Outcome.ANSWERED, Reason.ANSWERED, timedelta(minutes=3))
    await store.save_call(final)
    await store.save_call(with_step)  # a stale in-progress snapshot arriving late
    assert await store.get_call("c1") == final
    corrected = replace(final, answered_by="alice")
    await store.save_call(corrected)
    assert await store.get_call("c1") == corrected
    assert [r.id for r in await store.list_calls()] == ["c1"]


async def test_list_calls_newest_first_with_filters(store: Store) -> None:
    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    minute = timedelta(minutes=1)
    records = [
        ended(call("a", at(0), line="sales"), Outcome.ANSWERED, Reason.ANSWERED, minute),
        ended(call("b", at(1), line="support"), Outcome.MISSED, Reason.VOICEMAIL, minute),
        ended(call("c", at(2), line="sales"), Outcome.MISSED, Reason.DEAD_END, minute),
        call("d", at(3), line=None),
        ended(call("e", at(2), line="sales"), Outcome.ABANDONED, Reason.IVR_HANGUP, minute),
    ]
    for record in records:
        await store.save_call(record)

    assert [r.id for r in await store.list_calls()] == ["d", "e", "c", "b", "a"]
    assert [r.id for r in await store.list_calls(limit=2)] == ["d", "e"]
    assert [r.id for r in await store.list_calls(since=at(2))] == ["d", "e", "c"]
    assert [r.id for r in await store.list_calls(line="sales")] == ["e", "c", "a"]
    assert [r.id for r in await store.list_calls(outcome="missed")] == ["c", "b"]
    assert [r.id for r in await store.list_calls(line="sales", outcome="missed")] == ["c"]
    assert [
        r.id
        for r in await store.list_calls(since=T0 + timedelta(minutes=1), line="sales", outcome="abandoned")
    ] == ["e"]
    assert len(await store.list_calls(limit=100_000)) == 5
    with pytest.raises(ValueError, match="limit"):
        await store.list_calls(limit=0)


async def test_list_calls_is_capped_at_1000(store: Store) -> None:
    await asyncio.gather(*(store.save_call(call(f"c{n:04}", T0 + timedelta(seconds=n))) for n in range(1005)))
    newest = await store.list_calls(limit=5000)
    assert len(newest) == 1000
    assert newest[0].id == "c1004"


async def test_open_calls_for_restart_reconciliation(store: Store) -> None:
    await store.save_call(call("late", T0 + timedelta(minutes=5), host="host-a"))
    await store.save_call(call("early", T0, host="host-a"))
    await store.save_call(call("elsewhere", T0, host="host-b"))
    await store.save_call(
        ended(call("done", T0, host="host-a"), Outcome.MISSED, Reason.DEAD_END, timedelta(1))
    )

    assert [r.id for r in await store.open_calls("host-a")] == ["early", "late"]
    assert [r.id for r in await store.open_calls("host-b")] == ["elsewhere"]
    assert {r.id for r in await store.open_calls()} == {"early", "late", "elsewhere"}


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.list_calls(since=datetime(2026, 1, 5, 9, 0))
