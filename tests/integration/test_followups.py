"""Follow-up texts on real calls: the real daemon, the sandbox Asterisk, and a local Twilio stand-in
(`sms_server.py`) that checks each request as Twilio would and keeps what it accepted.

The texting lines ring bob, who never answers: a caller running `wait:1` hangs up while he rings
(missed, `ring_group_caller_hangup`); the `answers` line rings alice, who answers after a second.
Each test has its own lines and callers: opt-outs, once-per-caller windows and per-line counts of one
test never touch another.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callkeeper.store import OutboxStatus, Store, open_store
from tests.conftest import Sandbox
from tests.integration.daemon import RunningDaemon, running_daemon
from tests.integration.sandbox_calls import wait_until
from tests.integration.sms_server import SmsServer, sid_for, sms_server

Json = dict[str, Any]
FINAL = frozenset({"sent", "failed", "cancelled"})

MISS = "wait:1"  # hangs up while bob rings
LONG_PROMPT = "sound:demo-congrats"  # about 30 s of welcome: a caller who hangs up during it abandons
USERS = {"bob": {"endpoint": "Local/bob@user-noanswer"}, "alice": {"endpoint": "Local/alice-1@user-answer"}}
RING_GROUPS = {
    "rings": {"members": ["bob"], "ring_seconds": 30},
    "answers": {"members": ["alice"], "ring_seconds": 10},
}

MISSED_LINE = "+12125550101"
MISSED_SENDER = "+12125550190"
ABANDONED_LINE = "+12125550102"
CALLBACK_LINE = "+12125550103"
ANSWERS_LINE = "+12125550104"
WINDOW_LINE = "+12125550105"
QUIET_LINE = "+12125550106"
OPT_OUT_LINE = "+12125550107"
ANONYMOUS_LINE = "+12125550108"
LIMITED_LINE = "+12125550109"
LATER_LINE = "+12125550110"
NOW_LINE = "+12125550111"

MISSED_TEMPLATE = "Sorry we missed you at {line_name} ({line_number}), {caller}: {outcome}/{reason}."
ABANDONED_TEMPLATE = "You hung up before {line_name} answered ({outcome}/{reason}). Call {line_number}!"
CALLBACK_DELAY = 6
LATER_DELAY = 6

HONOLULU = ZoneInfo("Pacific/Honolulu")  # the quiet line's clock: far from UTC, no daylight saving time


def text_line(number: str, **text: object) -> Json:
    """A line that rings bob and texts the callers it misses, at once unless `delay_seconds` says."""
    return {
        "numbers": [number],
        "route": "ring_group:rings",
        "missed_calls": {"mailbox": "1000@default"},
        "followup_text": {"delay_seconds": 0, **text},
    }


def daemon_body(sms: SmsServer, lines: Json, **settings: object) -> Json:
    return {
        "users": USERS,
        "ring_groups": RING_GROUPS,
        "sms_providers": {"twilio": sms.provider()},
        "lines": lines,
        **settings,
    }


def followup_lines(quiet_end: datetime) -> Json:
    """The lines of the module's daemon; the quiet line is quiet from two hours before `quiet_end`."""
    quiet_start = quiet_end - timedelta(hours=2)
    return {
        "missed": text_line(MISSED_LINE, **{"from": MISSED_SENDER}, messages={"missed": MISSED_TEMPLATE}),
        # Sends from its own number (the default `from`).
        "abandoned": {
            **text_line(ABANDONED_LINE, messages={"abandoned": ABANDONED_TEMPLATE}),
            "welcome": LONG_PROMPT,
        },
        "callback": text_line(CALLBACK_LINE, delay_seconds=CALLBACK_DELAY),
        "answers": {
            "numbers": [ANSWERS_LINE],
            "route": "ring_group:answers",
            "missed_calls": {"mailbox": "1000@default"},
        },
        "window": text_line(WINDOW_LINE),
        "quiet": {
            **text_line(
                QUIET_LINE,
                quiet_hours={"start": quiet_start.strftime("%H:%M"), "end": quiet_end.strftime("%H:%M")},
            ),
            "timezone": "Pacific/Honolulu",
        },
        "opt-out": text_line(OPT_OUT_LINE),
        "anonymous": text_line(ANONYMOUS_LINE),
    }


@pytest.fixture
def sms() -> Iterator[SmsServer]:
    with sms_server() as server:
        yield server


@pytest.fixture
def quiet_end() -> datetime:
    """Where the quiet line's quiet hours end: an hour from now on its clock, to the minute."""
    return datetime.now(HONOLULU).replace(second=0, microsecond=0) + timedelta(hours=1)


@pytest.fixture
def daemon(sandbox: Sandbox, tmp_path: Path, sms: SmsServer, quiet_end: datetime) -> Iterator[RunningDaemon]:
    """A daemon per test: two daemons on one sandbox would fight over the ARI application."""
    with running_daemon(sandbox, tmp_path, daemon_body(sms, followup_lines(quiet_end))) as running:
        yield running


async def finished_call(daemon: RunningDaemon, line: str, caller: str, script: str = MISS) -> Json:
    """The record of a call from `caller` to `line` once it has its verdict."""
    return await daemon.verdict(await daemon.place(line, script, caller_id=caller), within=30)


async def text_of(daemon: RunningDaemon, call_id: str, status: str, within: float = 20) -> Json:
    """The call's follow-up text as GET /api/v1/calls/{id} shows it, once it has `status`."""
    seen: list[Json] = []

    async def reached() -> bool:
        record = await daemon.call(call_id)
        seen[:] = [f for f in (record or {}).get("followups", []) if f["kind"] == "sms"]
        if len(seen) == 1 and seen[0]["status"] in FINAL - {status}:
            pytest.fail(f"the text of {call_id} is {seen[0]['status']}, not {status}: {seen}", pytrace=False)
        return len(seen) == 1 and seen[0]["status"] == status

    try:
        await wait_until(reached, within=within, interval=0.1)
    except TimeoutError:
        pytest.fail(f"the text of {call_id} did not become {status} in {within} s: {seen}", pytrace=False)
    return seen[0]


def key(record: Json) -> str:
    return f"sms:{record['id']}"


def assert_texted_once(sms: SmsServer, record: Json, sender: str, body: str | None = None) -> None:
    """The provider accepted exactly one text about the call, to its caller, from `sender`."""
    accepted = sms.accepted(key(record))
    assert accepted is not None, f"no text about {record['id']}: {sms.twilio.accepted}"
    assert (accepted["To"], accepted["From"]) == (record["caller"], sender)
    if body is not None:
        assert accepted["Body"] == body
    assert sms.twilio.new_messages[key(record)] == 1
    assert len(sms.texts_to(record["caller"])) == 1


@contextlib.asynccontextmanager
async def store_of(daemon: RunningDaemon) -> AsyncIterator[Store]:
    """The daemon's own SQLite store, opened beside it (or after it died)."""
    store = await open_store(f"sqlite:///{daemon.workdir / 'callkeeper.db'}", "test")
    try:
        yield store
    finally:
        await store.close()


async def outbox_statuses(daemon: RunningDaemon, records: Sequence[Json]) -> list[OutboxStatus]:
    async with store_of(daemon) as store:
        return [(await store.outbox_for_call(record["id"]))[0].status for record in records]


async def test_missed_and_abandoned_callers_get_their_lines_text(
    daemon: RunningDaemon, sms: SmsServer
) -> None:
    missed, abandoned = await asyncio.gather(
        finished_call(daemon, MISSED_LINE, "+14155550111"),
        finished_call(daemon, ABANDONED_LINE, "+14155550112", "wait:2"),
    )
    assert (missed["outcome"], missed["reason"]) == ("missed", "ring_group_caller_hangup")
    assert (abandoned["outcome"], abandoned["reason"]) == ("abandoned", "welcome_hangup")

    for record, sender, body in (
        (
            missed,
            MISSED_SENDER,
            "Sorry we missed you at missed (+12125550101), +14155550111: missed/ring_group_caller_hangup.",
        ),
        (
            abandoned,
            ABANDONED_LINE,
            "You hung up before abandoned answered (abandoned/welcome_hangup). Call +12125550102!",
        ),
    ):
        text = await text_of(daemon, record["id"], "sent")
        assert (text["to"], text["provider_id"], text["detail"]) == (
            record["caller"],
            sid_for(key(record)),
            "",
        )
        assert text["sent_at"] >= text["created_at"]
        assert_texted_once(sms, record, sender, body)
        assert sms.requests_for(key(record)) == 1
    assert sms.refused == []


async def test_text_is_cancelled_when_the_caller_is_answered_within_the_delay(
    daemon: RunningDaemon, sms: SmsServer
) -> None:
    caller = "+14155550113"
    missed = await finished_call(daemon, CALLBACK_LINE, caller)
    pending = await text_of(daemon, missed["id"], "pending")
    due = datetime.fromisoformat(pending["created_at"]) + timedelta(seconds=CALLBACK_DELAY)

    callback = await daemon.place(ANSWERS_LINE, "wait:3", caller_id=caller)
    cancelled = await text_of(daemon, missed["id"], "cancelled")
    # Cancelled as the second call was answered, not only found out when the text fell due.
    assert datetime.now(UTC) < due
    assert cancelled["detail"] == "answered_on_later_call"
    answered = await daemon.verdict(callback)
    assert (answered["outcome"], answered["answered_by"]) == ("answered", "alice")

    await asyncio.sleep((due - datetime.now(UTC)).total_seconds() + 1.5)
    assert sms.requests_for(key(missed)) == 0 and sms.texts_to(caller) == []
    assert (await text_of(daemon, missed["id"], "cancelled"))["sent_at"] is None


async def test_a_caller_is_texted_once_per_window(daemon: RunningDaemon, sms: SmsServer) -> None:
    caller = "+14155550114"
    first, second = await asyncio.gather(
        finished_call(daemon, WINDOW_LINE, caller, "wait:1"),
        finished_call(daemon, WINDOW_LINE, caller, "wait:3"),
    )
    assert first["outcome"] == second["outcome"] == "missed"
    await text_of(daemon, first["id"], "sent")
    skipped = await text_of(daemon, second["id"], "cancelled")
    assert skipped["detail"] == "texted_within_window"
    assert_texted_once(sms, first, WINDOW_LINE)
    assert sms.requests_for(key(second)) == 0


async def test_quiet_hours_hold_the_text_until_they_end(
    daemon: RunningDaemon, sms: SmsServer, quiet_end: datetime
) -> None:
    record = await finished_call(daemon, QUIET_LINE, "+14155550115")
    text = await text_of(daemon, record["id"], "pending")
    assert (text["detail"], text["sent_at"]) == ("", None)
    async with store_of(daemon) as store:
        (item,) = await store.outbox_for_call(record["id"])
    assert item.next_attempt_at == quiet_end.astimezone(UTC)
    assert datetime.fromisoformat(text["due_at"]) == quiet_end, "the API shows when the text will go"
    await asyncio.sleep(1.5)  # a text due now is sent well within this
    assert sms.requests_for(key(record)) == 0
    assert (await text_of(daemon, record["id"], "pending"))["sent_at"] is None


async def test_an_opted_out_caller_is_not_texted(daemon: RunningDaemon, sms: SmsServer) -> None:
    caller = "+14155550116"
    status, body = await daemon.api("PUT", f"/api/v1/opt-outs/{caller}")
    assert (status, body["opted_out"], body["number"]) == (200, True, caller)
    record = await finished_call(daemon, OPT_OUT_LINE, caller)
    assert record["outcome"] == "missed"
    text = await text_of(daemon, record["id"], "held")
    assert (text["to"], text["detail"]) == (caller, "opted_out")
    assert sms.requests_for(key(record)) == 0 and sms.texts_to(caller) == []


@pytest.mark.parametrize(
    ("caller_id", "caller"), [('"Anonymous" <anonymous>', "anonymous"), ("", "")], ids=["anonymous", "empty"]
)
async def test_an_anonymous_caller_is_not_texted(
    daemon: RunningDaemon, sms: SmsServer, caller_id: str, caller: str
) -> None:
    record = await finished_call(daemon, ANONYMOUS_LINE, caller_id)
    assert (record["outcome"], record["caller"]) == ("missed", caller)
    text = await text_of(daemon, record["id"], "cancelled")
    assert text["detail"] == "anonymous_caller"
    assert sms.requests_for(key(record)) == 0


async def test_line_rate_limit_holds_the_next_callers_text(sandbox: Sandbox, tmp_path: Path) -> None:
    with (
        sms_server() as sms,
        running_daemon(
            sandbox,
            tmp_path,
            daemon_body(sms, {"limited": text_line(LIMITED_LINE)}, rate_limits={"per_line_per_hour": 1}),
        ) as daemon,
    ):
        first, second = await asyncio.gather(
            finished_call(daemon, LIMITED_LINE, "+14155550117", "wait:1"),
            finished_call(daemon, LIMITED_LINE, "+14155550118", "wait:3"),
        )
        await text_of(daemon, first["id"], "sent")
        held = await text_of(daemon, second["id"], "held")
        assert (held["to"], held["detail"]) == ("+14155550118", "line_rate_limit")
        assert_texted_once(sms, first, LIMITED_LINE)
        assert sms.requests_for(key(second)) == 0


CRASH_LINES = {
    "later": text_line(LATER_LINE, delay_seconds=LATER_DELAY),
    "now": text_line(NOW_LINE),
}


def kill(daemon: RunningDaemon) -> None:
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL


async def test_sigkill_with_texts_pending_sends_each_once_after_restart(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with (
        sms_server() as sms,
        running_daemon(sandbox, tmp_path, daemon_body(sms, CRASH_LINES)) as daemon,
    ):
        sent, *waiting = await asyncio.gather(
            finished_call(daemon, NOW_LINE, "+14155550119"),
            finished_call(daemon, LATER_LINE, "+14155550120"),
            finished_call(daemon, LATER_LINE, "+14155550121"),
        )
        await text_of(daemon, sent["id"], "sent")
        for record in waiting:
            await text_of(daemon, record["id"], "pending")
        kill(daemon)

        assert await outbox_statuses(daemon, [sent, *waiting]) == [
            OutboxStatus.SENT,
            OutboxStatus.PENDING,
            OutboxStatus.PENDING,
        ]
        assert [sms.requests_for(key(record)) for record in waiting] == [0, 0]

        daemon.start()
        for record in waiting:
            text = await text_of(daemon, record["id"], "sent", within=LATER_DELAY + 15)
            assert text["provider_id"] == sid_for(key(record))
        for record, sender in ((sent, NOW_LINE), *((record, LATER_LINE) for record in waiting)):
            assert_texted_once(sms, record, sender)
            assert sms.requests_for(key(record)) == 1
        assert len(sms.twilio.accepted) == 3
        assert sms.refused == []


def expire_leases(daemon: RunningDaemon) -> int:
    """Lets the leases of the killed daemon's sends run out (60 s) without waiting for it: their end is
    moved to the past in the stopped daemon's database. The unit test tests/followups/test_crash.py waits
    for real leases to expire."""
    with contextlib.closing(sqlite3.connect(daemon.workdir / "callkeeper.db")) as database, database:
        cursor = database.execute(
            "UPDATE outbox SET claimed_until = '2000-01-01T00:00:00.000000Z' WHERE status = 'sending'"
        )
        return cursor.rowcount


async def test_sigkill_while_the_provider_is_slow_sends_each_text_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with (
        sms_server() as sms,
        running_daemon(sandbox, tmp_path, daemon_body(sms, CRASH_LINES)) as daemon,
    ):
        # Each new message is accepted at once, its reply comes late: the daemon dies waiting for it.
        sms.slow_down(20)
        records = await asyncio.gather(
            finished_call(daemon, NOW_LINE, "+14155550122"),
            finished_call(daemon, NOW_LINE, "+14155550123", "wait:2"),
        )
        await wait_until(
            lambda: all(sms.requests_for(key(record)) for record in records),
            within=20,
            what="both texts posted to the provider",
        )
        kill(daemon)

        assert await outbox_statuses(daemon, records) == [OutboxStatus.SENDING, OutboxStatus.SENDING]
        assert all(sms.accepted(key(record)) for record in records)
        assert expire_leases(daemon) == 2
        sms.slow_down(0)

        daemon.start()
        for record in records:
            text = await text_of(daemon, record["id"], "sent")
            assert text["provider_id"] == sid_for(key(record))
            # Sent twice, taken as a new message once: the resend carried the same idempotency token.
            assert sms.requests_for(key(record)) == 2
            assert_texted_once(sms, record, NOW_LINE)
        assert len(sms.twilio.accepted) == 2
        assert sms.refused == []
