"""Finding a call's message in app_voicemail's spool.

app_voicemail keeps each message as `<spool>/<context>/<mailbox>/<folder>/msgNNNN.<format>` with a
`msgNNNN.txt` beside it (`callerid`, `origtime` in Unix seconds, `duration`). The names are no identity:
VoiceMailMain renumbers a folder when a message is deleted and moves heard messages from INBOX to Old.
So a call's message is the one, in any folder of its mailbox, from the call's caller (callkeeper sets the
caller ID the message records) whose recording began between the call's voicemail step and its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from callkeeper.inbox.model import (
    NoVoicemail,
    VoicemailAudio,
    VoicemailGone,
    VoicemailNotPlayable,
    VoicemailSpoolMissing,
)
from callkeeper.records import CallRecord

# Browsers play PCM WAV (`format = wav`); not GSM, nor `wav49` (GSM in a WAV file, named .WAV).
PLAYABLE_SUFFIX = ".wav"
CONTENT_TYPE = "audio/wav"
# origtime has whole seconds; the clocks of Asterisk's host and the daemon's may differ a little.
SLACK = timedelta(seconds=2)
_MESSAGE = re.compile(r"msg[0-9]{4}\.txt")
_NUMBER = re.compile(r"<([^>]*)>")


@dataclass(frozen=True, slots=True)
class _Message:
    metadata: Path
    caller: str
    recorded_at: datetime | None
    seconds: int


def _digits(number: str) -> str:
    return re.sub(r"[^0-9+]", "", number)


def _read(metadata: Path) -> _Message | None:
    try:
        text = metadata.read_text(encoding="utf-8", errors="replace")
    except OSError:  # deleted while we looked
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            values[key.strip()] = value.strip()
    caller_id = values.get("callerid", "")
    inside = _NUMBER.search(caller_id)
    origtime = values.get("origtime", "")
    return _Message(
        metadata=metadata,
        caller=_digits(inside.group(1) if inside else caller_id),
        recorded_at=datetime.fromtimestamp(int(origtime)).astimezone() if origtime.isdigit() else None,
        seconds=int(values["duration"]) if values.get("duration", "").isdigit() else 0,
    )


def _mailbox_folder(spool: Path, mailbox: str) -> Path:
    box, _, context = mailbox.partition("@")
    if not box or "/" in box or "/" in context or box.startswith(".") or context.startswith("."):
        raise NoVoicemail(f"mailbox {mailbox!r} is not a spool folder")
    return spool / (context or "default") / box


def find_message(spool_path: str, record: CallRecord | None) -> VoicemailAudio:
    """The audio of the message `record`'s call left (blocking file I/O: run it in a thread)."""
    if record is None or record.voicemail is None or not record.voicemail.left:
        raise NoVoicemail("this call left no voicemail")
    spool = Path(spool_path)
    if not spool.is_dir():
        raise VoicemailSpoolMissing(
            f"the voicemail spool {spool_path} (asterisk.voicemail_spool) is not there"
        )
    folder = _mailbox_folder(spool, record.voicemail.mailbox)
    steps = [step.at for step in record.steps if step.stage == "voicemail"]
    earliest = (steps[-1] if steps else record.started_at) - SLACK
    latest = (record.ended_at or record.started_at) + SLACK
    caller = _digits(record.customer)
    candidates = sorted(folder.glob("*/msg[0-9][0-9][0-9][0-9].txt")) if folder.is_dir() else []
    found = [
        message
        for message in map(_read, (path for path in candidates if _MESSAGE.fullmatch(path.name)))
        if message is not None
        and message.caller == caller
        and message.recorded_at is not None
        and earliest <= message.recorded_at <= latest
    ]
    if not found:
        raise VoicemailGone("the message was deleted meanwhile")
    message = min(found, key=lambda found: abs((found.recorded_at or earliest) - earliest))
    audio = message.metadata.with_suffix(PLAYABLE_SUFFIX)
    if not audio.is_file():
        raise VoicemailNotPlayable(
            "the message was not recorded as WAV: set `format = wav` in voicemail.conf (browsers play "
            "neither GSM nor wav49)"
        )
    return VoicemailAudio(path=audio, content_type=CONTENT_TYPE, seconds=message.seconds)
