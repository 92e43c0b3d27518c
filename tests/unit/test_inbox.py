"""The inbox's pure parts and its service over an in-memory store: verdicts in words, the report's
percentile, finding a message in app_voicemail's spool, and the service's checks."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from callkeeper.inbox.model import (
    InboxAlreadyHandled,
    InboxFilter,
    NoVoicemail,
    VoicemailGone,
    VoicemailNotPlayable,
    VoicemailSpoolMissing,
)
from callkeeper.inbox.report import p90
from callkeeper.inbox.service import InboxService, InvalidRequest, UnknownItem, UnknownUser
from callkeeper.inbox.voicemail import find_message
from callkeeper.inbox.words import reason_in_words
from callkeeper.live import DialerRejected
from callkeeper.records import CallRecord, Direction, Outcome, Reason, Step, VoicemailResult
from tests.unit.test_api_fakes import T0, FakeControl, open_inbox

CALLER = "+4930111111"


def missed_call(call_id: str = "c1", minute: int = 0, **changes: object) -> CallRecord:
    started = T0 + timedelta(minutes=minute)
    record = CallRecord(
        id=call_id,
        direction=Direction.INBOUND,
        line="sales",
        caller=CALLER,
        dialed="+4930222220",
        started_at=started,
        ended_at=started + timedelta(seconds=40),
        outcome=Outcome.MISSED,
        reason=Reason.VOICEMAIL,
        voicemail=VoicemailResult(True, 7, "1000@default"),
        steps=(
            Step("ring_group", started),
            Step("voicemail", started + timedelta(seconds=20), "1000@default"),
        ),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


# --- words


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_plain_words(reason: Reason) -> None:
    words = reason_in_words(Outcome.MISSED, reason)
    assert words[0].isupper() and "_" not in words


def test_a_short_abandon_says_so() -> None:
    assert reason_in_words(Outcome.ABANDONED, Reason.WELCOME_HANGUP, short=True) == "Hung up within seconds"
    assert (
        reason_in_words(Outcome.ABANDONED, Reason.RING_GROUP_CALLER_HANGUP) == "Hung up while the phones rang"
    )


# --- the report's percentile


def test_p90_is_the_nearest_rank() -> None:
    assert p90([5.0]) == 5.0
    assert p90([1.0, 2.0]) == 2.0
    assert p90([float(n) for n in range(1, 11)]) == 9.0
    assert p90([float(n) for n in range(20, 0, -1)]) == 18.0


# --- voicemail in the spool


def leave_message(
    spool: Path,
    folder: str,
    number: int,
    recorded_at: datetime,
    *,
    caller_id: str = f'"Carl" <{CALLER}>',
    formats: tuple[str, ...] = ("wav",),
) -> Path:
    """A message as app_voicemail writes it: msgNNNN.txt and one file per format."""
    box = spool / "default" / "1000" / folder
    box.mkdir(parents=True, exist_ok=True)
    stem = box / f"msg{number:04d}"
    stem.with_suffix(".txt").write_text(
        ";\n; Message Information file\n;\n[message]\norigmailbox=1000\ncontext=callkeeper-voicemail\n"
        f"callerid={caller_id}\norigtime={int(recorded_at.timestamp())}\nmsg_id=1-0\nflag=\nduration=7\n"
    )
    for format_ in formats:
        if format_ == "wav":
            with wave.open(str(stem.with_suffix(".wav")), "wb") as audio:
                audio.setnchannels(1)
                audio.setsampwidth(2)
                audio.setframerate(8000)
                audio.writeframes(b"\0\0" * 8000)
        else:
            stem.with_suffix(f".{format_}").write_bytes(b"\0" * 33)
    return stem


def test_the_calls_message_is_found_by_caller_and_time(tmp_path: Path) -> None:
    record = missed_call()
    leave_message(tmp_path, "INBOX", 0, T0 + timedelta(seconds=25), caller_id='"Other" <+4930999999>')
    leave_message(tmp_path, "INBOX", 1, T0 - timedelta(hours=1))  # the same caller, an hour before
    mine = leave_message(tmp_path, "INBOX", 2, T0 + timedelta(seconds=27))
    audio = find_message(str(tmp_path), record)
    assert (audio.path, audio.content_type, audio.seconds) == (mine.with_suffix(".wav"), "audio/wav", 7)


def test_a_heard_and_renumbered_message_is_still_found(tmp_path: Path) -> None:
    """VoiceMailMain moved it to Old and renumbered it msg0000."""
    moved = leave_message(tmp_path, "Old", 0, T0 + timedelta(seconds=26), caller_id=CALLER)
    assert find_message(str(tmp_path), missed_call()).path == moved.with_suffix(".wav")


def test_a_deleted_message_is_gone(tmp_path: Path) -> None:
    (tmp_path / "default" / "1000" / "INBOX").mkdir(parents=True)
    with pytest.raises(VoicemailGone):
        find_message(str(tmp_path), missed_call())
    with pytest.raises(VoicemailGone):  # the whole mailbox was removed
        find_message(str(tmp_path), missed_call(voicemail=VoicemailResult(True, 7, "2000@other")))


def test_no_message_left(tmp_path: Path) -> None:
    for record in (
        None,
        missed_call(voicemail=None),
        missed_call(voicemail=VoicemailResult(False, 0, "1000")),
    ):
        with pytest.raises(NoVoicemail):
            find_message(str(tmp_path), record)
    with pytest.raises(NoVoicemail):
        find_message(str(tmp_path), missed_call(voicemail=VoicemailResult(True, 7, "../../etc@default")))


def test_a_gsm_only_message_is_not_playable(tmp_path: Path) -> None:
    leave_message(tmp_path, "INBOX", 0, T0 + timedelta(seconds=25), formats=("gsm", "WAV"))
    with pytest.raises(VoicemailNotPlayable, match="format = wav"):
        find_message(str(tmp_path), missed_call())


def test_a_missing_spool_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(VoicemailSpoolMissing, match=r"asterisk\.voicemail_spool"):
        find_message(str(tmp_path / "nowhere"), missed_call())


# --- the service


@pytest.fixture
async def inbox(tmp_path: Path) -> AsyncIterator[tuple[InboxService, FakeControl]]:
    control = FakeControl()
    service = await open_inbox(control, str(tmp_path))
    yield service, control
    await service.store.close()


async def test_mark_handled_checks_the_user_the_note_and_the_item(
    inbox: tuple[InboxService, FakeControl],
) -> None:
    service, _ = inbox
    await service.store.save_call(missed_call())
    with pytest.raises(UnknownUser):
        await service.mark_handled("c1", "mallory", None)
    with pytest.raises(InvalidRequest):
        await service.mark_handled("c1", "alice", "x" * 2001)
    with pytest.raises(UnknownItem):
        await service.mark_handled("nope", "alice", None)
    item = await service.mark_handled("c1", "alice", "")
    assert (item.handled_by, item.note, item.handled_at) == ("alice", None, T0 + timedelta(hours=1))
    with pytest.raises(InboxAlreadyHandled):
        await service.mark_handled("c1", "bob", "me too")


async def test_call_back_dials_the_caller_from_the_line_and_links_the_call(
    inbox: tuple[InboxService, FakeControl],
) -> None:
    service, control = inbox
    await service.store.save_call(missed_call())
    callback_id = await service.call_back("c1", "alice")
    assert control.dialed == [(CALLER, "sales", "alice", None)]
    item = await service.item(callback_id)
    assert item is not None and item.call_ids == ("c1", callback_id)

    await service.store.save_call(missed_call("national", minute=1, caller="030 5555555"))
    await service.call_back("national", "alice")
    assert control.dialed[-1] == ("+49305555555", "sales", "alice", None)  # read in the line's country

    with pytest.raises(UnknownUser):
        await service.call_back("c1", "mallory")
    with pytest.raises(UnknownItem):
        await service.call_back("nope", "alice")
    with pytest.raises(DialerRejected):
        await service.call_back("c1", "bob")  # the fake's bob is busy
    await service.mark_handled("c1", "alice", None)
    with pytest.raises(InboxAlreadyHandled):
        await service.call_back("c1", "alice")


async def test_voicemail_audio_reads_the_spool(
    inbox: tuple[InboxService, FakeControl], tmp_path: Path
) -> None:
    service, _ = inbox
    await service.store.save_call(missed_call())
    stem = leave_message(tmp_path, "INBOX", 0, T0 + timedelta(seconds=25))
    assert (await service.voicemail_audio("c1")).path == stem.with_suffix(".wav")
    stem.with_suffix(".txt").unlink()
    with pytest.raises(VoicemailGone):
        await service.voicemail_audio("c1")
    with pytest.raises(NoVoicemail):
        await service.voicemail_audio("unknown")


async def test_list_history_version_and_limits(inbox: tuple[InboxService, FakeControl]) -> None:
    service, _ = inbox
    assert await service.version() == 0
    await service.store.save_call(missed_call("c1"))
    await service.store.save_call(missed_call("c2", minute=5))
    assert await service.version() == 2
    assert [item.call_ids for item in await service.list(InboxFilter())] == [("c1", "c2")]
    assert [call.id for call in await service.history(CALLER)] == ["c2", "c1"]
    with pytest.raises(InvalidRequest):
        await service.list(InboxFilter(limit=0))
    with pytest.raises(InvalidRequest):
        await service.history(CALLER, limit=10_000)
