"""The record writer's hooks: `call.started` once per call it writes, follow-ups on the final record,
both retried until they succeed."""

from __future__ import annotations

from dataclasses import replace

from callkeeper.records import CallRecord
from callkeeper.service.record_writer import RecordWriter
from tests.followups.builders import call


class Sink:
    def __init__(self) -> None:
        self.saved: list[CallRecord] = []

    async def save_call(self, record: CallRecord) -> None:
        self.saved.append(record)


async def test_call_started_runs_once_per_call_then_call_finished() -> None:
    seen: list[tuple[str, str, bool]] = []
    failures = [RuntimeError("store down")]

    async def started(record: CallRecord) -> None:
        if failures:
            raise failures.pop()
        seen.append(("started", record.id, record.ended))

    async def finished(record: CallRecord) -> None:
        seen.append(("finished", record.id, record.ended))

    sink = Sink()
    writer = RecordWriter(sink, retry_seconds=0.01, on_final=finished, on_start=started)
    writer.start()
    try:
        ringing = replace(call("call-1"), ended_at=None, outcome=None, reason=None)
        writer.save(ringing)
        assert await writer.flush(5)
        writer.save(replace(ringing, steps=()))
        assert await writer.flush(5)
        writer.save(call("call-1"))
        writer.save(call("call-2"))  # ended before its first write
        assert await writer.flush(5)
    finally:
        await writer.close()
    assert seen == [
        ("started", "call-1", False),
        ("finished", "call-1", True),
        ("started", "call-2", True),
        ("finished", "call-2", True),
    ]
    assert len(sink.saved) == 4
    assert writer.started == set()
