"""The daily report from known records, every figure of the day's row, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from callkeeper.config.model import AsteriskConfig, Config, Destination, DestinationKind, Line, Secret, User
from callkeeper.inbox.model import DailyReportRow
from callkeeper.inbox.service import InboxService
from callkeeper.records import Outcome, Reason, VoicemailResult
from callkeeper.store import Store
from tests.store.test_inbox import inbound, outbound

NEW_YORK = ZoneInfo("America/New_York")
DAY = date(2026, 3, 2)  # EST: UTC-5
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 04:00 in New York: `inbound(..., minute)` counts from here


def config() -> Config:
    return Config(
        asterisk=AsteriskConfig(url="http://127.0.0.1:8088", username="callkeeper", password=Secret("x")),
        lines={
            "sales": Line(
                "sales", ("+15559870000",), Destination(DestinationKind.VOICEMAIL), timezone=NEW_YORK
            ),
            "support": Line("support", ("+15559870001",), Destination(DestinationKind.VOICEMAIL)),
        },
        users={"alice": User("alice", "PJSIP/alice")},
    )


class NoDialer:
    def dial(self, contact: str, line: str, user: str | None, ring_group: str | None) -> str:
        raise AssertionError("the report dials nobody")


async def test_every_figure_of_the_days_row(store: Store) -> None:
    calls = [
        # Answered: 3 (one of them resolves m2, which does not make m2 called back).
        inbound("ans1", 0, Outcome.ANSWERED, Reason.ANSWERED, caller="+15550000001"),
        inbound("ans2", 5, Outcome.ANSWERED, Reason.ANSWERED, caller="+15550000002"),
        # Missed: 2, one with a voicemail; a voicemail that was not left does not count.
        inbound("m1", 10, caller="+15550000010", voicemail=VoicemailResult(True, 14, "1000@default")),
        inbound(
            "m2",
            11,
            Outcome.MISSED,
            Reason.AFTER_HOURS,
            caller="+15550000011",
            voicemail=VoicemailResult(False, 0, "1000@default"),
        ),
        inbound("ans3", 20, Outcome.ANSWERED, Reason.ANSWERED, caller="+15550000011"),
        # Abandoned: 2, and one short abandon counted apart.
        inbound("a1", 30, Outcome.ABANDONED, Reason.FISHING_HANGUP, caller="+15550000020"),
        inbound("a2", 31, Outcome.ABANDONED, Reason.IVR_HANGUP, caller="+15550000021"),
        inbound("s1", 32, Outcome.ABANDONED, Reason.WELCOME_HANGUP, caller="+15550000022", short=True),
        # Ignored: 1.
        inbound("i1", 33, Outcome.IGNORED, Reason.DEAD_END, caller="+15550000023"),
        # Called back: m1 10 minutes after it ended, a1 30 minutes after; a2 never.
        outbound("cb-m1", 10 + 0.5 + 10, Outcome.ANSWERED, Reason.ANSWERED, contact="+15550000010"),
        outbound("cb-a1", 30 + 0.5 + 30, Outcome.ANSWERED, Reason.ANSWERED, contact="+15550000020"),
        # 22:30 in New York is still the same day there (03:30 UTC the next day) ...
        inbound("late", 18 * 60 + 30, caller="+15550000030"),
        # ... and 23:00 the day before is not (04:00 UTC on the day).
        inbound("before", -300, caller="+15550000031"),
        # Another line has rows of its own.
        inbound("other", 40, line="support", caller="+15550000040"),
    ]
    for record in calls:
        await store.save_call(record)
    service = InboxService(store, config, NoDialer())

    rows = await service.daily_report(frozenset({"sales"}), DAY, DAY)

    assert rows == [
        DailyReportRow(
            line="sales",
            day=DAY,
            calls=10,
            answered=3,
            missed=3,
            abandoned=2,
            short_abandons=1,
            ignored=1,
            called_back_share=0.4,
            callback_median_seconds=1200.0,
            callback_p90_seconds=1800.0,
            voicemails=1,
        )
    ]
    every_line = await service.daily_report(None, DAY - timedelta(days=1), DAY)
    assert [(row.line, row.day, row.calls) for row in every_line] == [
        ("sales", DAY - timedelta(days=1), 1),
        ("sales", DAY, 10),
        ("support", DAY, 1),
    ]
    assert await service.daily_report(None, DAY, DAY - timedelta(days=1)) == []
    assert rows[0].to_json()["day"] == "2026-03-02"
