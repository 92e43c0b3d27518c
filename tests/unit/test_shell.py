"""Component tests of the shell (the daemon's asyncio side) against the in-process fake ARI: the
real `Daemon` with its connection, call service, record writer and live state on a SQLite store,
Asterisk played by `tests.fake_ari`. Fast and deterministic: no Asterisk, no timers of minutes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import test_utils

from callkeeper.config.loader import load_config
from callkeeper.records import CallRecord
from callkeeper.run import EXIT_OK, Daemon
from callkeeper.service.record_writer import RecordWriter
from callkeeper.store import Store, open_store
from tests.fake_ari import NO_CALLS, FakeAri, answers_at_once, channel, event
from tests.followups.builders import call

TOKEN = "t" * 40


def config_text(ari_url: str, db: Path, api_port: int) -> str:
    return f"""\
asterisk: {{url: "{ari_url}", password: "ari-s3cret"}}
storage: "sqlite:///{db}"
http: {{listen: "127.0.0.1:{api_port}", token: "{TOKEN}"}}
users:
  alice: {{endpoint: PJSIP/alice}}
lines:
  closed: {{numbers: ["100"], route: dead_end}}
  sales: {{numbers: ["200"], route: "user:alice"}}
shutdown_grace_seconds: 1
"""


def caller(channel_id: str, dialed: str) -> dict[str, Any]:
    return channel(
        channel_id,
        f"PJSIP/trunk-{channel_id}",
        state="Ring",
        caller="+12125550123",
        app_data=f"callkeeper,inbound,{dialed}",
        exten=dialed,
    )


def arrived(channel_id: str, dialed: str) -> dict[str, Any]:
    return event("StasisStart", args=["inbound", dialed], channel=caller(channel_id, dialed))


def hung_up(channel_id: str, dialed: str) -> list[dict[str, Any]]:
    gone = caller(channel_id, dialed)
    return [
        event("ChannelHangupRequest", channel=gone, cause=16),
        event("StasisEnd", channel=gone),
        event("ChannelDestroyed", channel=gone, cause=16, cause_txt="Normal Clearing"),
    ]


async def until(check: Callable[[], Awaitable[object] | object], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            result = check()
            if await result if isinstance(result, Awaitable) else result:
                return
            await asyncio.sleep(0.005)


@dataclass
class Running:
    daemon: Daemon
    fake: FakeAri
    store: Store
    config_path: Path
    task: asyncio.Task[int]

    async def stop(self) -> int:
        self.daemon.stopping.set()
        return await asyncio.wait_for(self.task, 10)

    async def record(self, call_id: str) -> CallRecord | None:
        return await self.store.get_call(call_id)

    async def final_record(self, call_id: str) -> CallRecord:
        """The call's record once it is final (in-progress versions are stored too)."""

        async def final() -> CallRecord | None:
            record = await self.record(call_id)
            return record if record is not None and record.ended else None

        await until(final)
        record = await final()
        assert record is not None
        return record


@pytest.fixture
async def running(
    tmp_path: Path, fake_ari: tuple[FakeAri, test_utils.TestServer], unused_tcp_port: int
) -> AsyncIterator[Running]:
    fake, server = fake_ari
    fake.routes |= NO_CALLS
    fake.responders.append(answers_at_once())
    path = tmp_path / "callkeeper.yaml"
    path.write_text(config_text(str(server.make_url("")), tmp_path / "ck.db", unused_tcp_port))
    config = load_config(path)
    store = await open_store(config.storage, "host-a")
    daemon = Daemon(config, path, store, "host-a")
    task = asyncio.create_task(daemon.run())
    await until(lambda: daemon.connection.ready and daemon.connection.requests.usable)
    yield Running(daemon, fake, store, path, task)
    if not task.done():
        daemon.stopping.set()
        await asyncio.wait_for(task, 10)


async def test_connecting_sets_the_filter_subscribes_and_reconciles(running: Running) -> None:
    fake = running.fake

    assert [handshake.query for handshake in fake.handshakes] == [
        {"app": "callkeeper", "subscribeAll": "false"}
    ]
    asked = [(seen.method, seen.raw_path) for seen in fake.seen]
    assert asked[0] == ("GET", "/ari/asterisk/info")
    assert ("PUT", "/ari/applications/callkeeper/eventFilter") in asked
    assert ("POST", "/ari/applications/callkeeper/subscription") in asked
    assert asked.index(("GET", "/ari/channels")) < asked.index(("GET", "/ari/bridges"))
    assert {seen.authorization for seen in fake.seen} == {"Basic Y2FsbGtlZXBlcjphcmktczNjcmV0"}
    assert await running.stop() == EXIT_OK


async def test_a_call_to_a_dead_end_is_hung_up_and_recorded(running: Running) -> None:
    fake = running.fake

    await fake.push(arrived("c1", "100"))
    await until(lambda: fake.requests("DELETE", "/ari/channels/c1"))
    await fake.push(*hung_up("c1", "100"))

    record = await running.final_record("c1")
    assert (record.line, record.outcome, record.reason) == ("closed", "ignored", "dead_end")
    assert running.daemon.service.calls_in_progress() == 0
    assert await running.stop() == EXIT_OK


async def test_a_call_to_a_user_rings_them_over_the_event_socket_and_ends_the_leg(running: Running) -> None:
    fake = running.fake
    before = len(fake.seen)

    await fake.push(arrived("c2", "200"))
    await until(lambda: fake.requests("POST", "/ari/channels/create"))
    leg_id = fake.requests("POST", "/ari/channels/create")[0].query["channelId"]
    leg = channel(leg_id, "PJSIP/alice-1", app_data="callkeeper,leg,c2")
    await fake.push(event("StasisStart", args=["leg", "c2"], channel=leg))
    await until(lambda: fake.requests("POST", f"/ari/channels/{leg_id}/dial"))
    await fake.push(*hung_up("c2", "200"))
    await until(lambda: fake.requests("DELETE", f"/ari/channels/{leg_id}"))
    await fake.push(event("ChannelDestroyed", channel=leg, cause=16, cause_txt="Normal Clearing"))

    asked = [(seen.method, seen.raw_path.replace(leg_id, "LEG"), seen.lane) for seen in fake.seen[before:]]
    assert asked[:2] == [
        ("POST", "/ari/channels/create", "websocket"),
        ("POST", "/ari/channels/LEG/dial", "websocket"),
    ]
    assert ("DELETE", "/ari/channels/LEG", "websocket") in asked
    assert fake.requests("POST", "/ari/channels/create")[0].query["endpoint"] == "PJSIP/alice"
    record = await running.final_record("c2")
    assert (record.line, record.outcome, record.reason) == ("sales", "missed", "personal_line_caller_hangup")


async def test_a_reload_applies_a_valid_file_and_rejects_a_broken_one_with_its_lines(
    running: Running,
) -> None:
    path = running.config_path
    path.write_text(path.read_text().replace("shutdown_grace_seconds: 1", "shutdown_grace_seconds: 2"))
    with structlog.testing.capture_logs() as logs:
        await running.daemon.reload()
        path.write_text(path.read_text() + "rate_limits: {daily_cap: !!int abc}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: len(logs) == 2)

    assert running.daemon.config.shutdown_grace_seconds == 2
    assert [entry["event"] for entry in logs] == ["config_reloaded", "reload_rejected"]
    assert logs[1]["errors"] == (
        f"{path}:10: rate_limits.daily_cap: expected a plain decimal integer, got 'abc'"
    )


async def test_presence_set_through_the_live_daemon_survives_a_restart(running: Running) -> None:
    running.daemon.control.set_presence("alice", "away")
    await until(lambda: running.store.get_state("presence.away"))
    assert running.daemon.control.presence("alice") == "away"
    assert await running.stop() == EXIT_OK

    config = load_config(running.config_path)
    store = await open_store(config.storage, "host-a")
    again = Daemon(config, running.config_path, store, "host-a")
    await again.control.restore()
    assert again.control.presence("alice") == "away"
    await again.session.close()
    await store.close()


async def test_losing_the_event_socket_reconnects_and_reconciles_again(running: Running) -> None:
    fake = running.fake

    await fake.drop()
    await until(lambda: len(fake.handshakes) == 2 and running.daemon.connection.ready, within=10)
    await until(lambda: len(fake.requests("GET", "/ari/channels")) == 2)
    assert running.daemon.connection.reconnects == 1


async def test_after_a_reconnect_a_vanished_caller_is_closed_and_an_orphan_leg_ended(
    running: Running,
) -> None:
    fake = running.fake
    await fake.push(arrived("c3", "200"))
    await until(lambda: fake.requests("POST", "/ari/channels/create"))
    leg_id = fake.requests("POST", "/ari/channels/create")[0].query["channelId"]
    await fake.push(event("StasisStart", args=["leg", "c3"], channel=channel(leg_id, "PJSIP/alice-2")))
    await until(lambda: fake.requests("POST", f"/ari/channels/{leg_id}/dial"))
    orphan = channel("o1", "PJSIP/bob-9", state="Up", app_data="callkeeper,leg,gone-call")
    fake.routes[("GET", "/ari/channels")] = (200, [orphan])

    await fake.drop()  # the caller hangs up while the daemon is away: no event tells
    await until(lambda: fake.requests("DELETE", "/ari/channels/o1"), within=10)

    record = await running.final_record("c3")
    assert (record.outcome, record.reason, record.end_observed) == (
        "missed",
        "personal_line_caller_hangup",
        False,
    )
    assert running.daemon.service.calls_in_progress() == 0


class FlakySink:
    """Fails the first `failures` writes, then keeps every record it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.saved: list[CallRecord] = []

    async def save_call(self, record: CallRecord) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.saved.append(record)


async def test_the_record_writer_keeps_the_newest_version_and_retries_a_failed_write() -> None:
    sink = FlakySink(failures=1)
    finals: list[str] = []

    async def on_final(record: CallRecord) -> None:
        finals.append(record.id)

    writer = RecordWriter(sink, retry_seconds=0.001, on_final=on_final)
    writer.start()
    in_progress = replace(call("c1"), ended_at=None, outcome=None, reason=None)
    writer.save(in_progress)
    writer.save(call("c1"))  # the final version replaces the one still waiting
    writer.save(call("c2"))
    assert await writer.flush(5)
    await writer.close()

    # The failed write waits behind the others; its follow-ups are planned again (planning is idempotent).
    assert [(record.id, record.ended) for record in sink.saved] == [("c2", True), ("c1", True)]
    assert (writer.written, writer.failures) == (2, 1)
    assert finals == ["c1", "c2", "c1"]


async def test_a_malformed_ari_reply_moves_the_call_on_instead_of_stranding_it(running: Running) -> None:
    fake = running.fake
    fake.routes[("POST", "/ari/channels/create")] = (200, None)  # no channel in the reply

    await fake.push(arrived("c9", "200"))
    # The user's leg could not be made: the caller is not left waiting, the line's missed-call
    # handling (voicemail) takes over.
    await until(lambda: fake.requests("POST", "/ari/channels/c9/(answer|continue|play)"))
    await fake.push(*hung_up("c9", "200"))
    record = await running.final_record("c9")
    assert record.outcome == "missed"
