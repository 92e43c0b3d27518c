"""In-memory stand-ins for the two interfaces the HTTP API talks through, shared by the test_api_* modules.

They implement `CallHistory` and `DaemonControl` literally (no logic of the daemon), so the API tests
test the HTTP layer alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callkeeper.config.model import (
    AsteriskConfig,
    Config,
    Destination,
    DestinationKind,
    HttpConfig,
    Line,
    Secret,
    User,
)
from callkeeper.inbox.service import InboxService
from callkeeper.live import DialerRejected, Histogram, MetricsSnapshot, QueuedCaller, Refusal
from callkeeper.records import (
    CallRecord,
    Direction,
    Followup,
    Outcome,
    Reason,
    Step,
    VoicemailResult,
)
from callkeeper.store import open_store

TOKEN = "s3cret-token-value-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HTTP = HttpConfig(token=Secret(TOKEN))
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)


def call(
    call_id: str,
    *,
    minutes: int = 0,
    line: str | None = "sales",
    outcome: Outcome | None = Outcome.MISSED,
    reason: Reason | None = Reason.RING_GROUP_NO_ANSWER,
    seconds: int = 42,
    **changes: Any,
) -> CallRecord:
    started = T0 + timedelta(minutes=minutes)
    return CallRecord(
        id=call_id,
        direction=Direction.INBOUND,
        line=line,
        caller="+4930111111",
        dialed="+4930222222",
        started_at=started,
        ended_at=started + timedelta(seconds=seconds) if outcome else None,
        outcome=outcome,
        reason=reason if outcome else None,
        steps=(Step("welcome", started), Step("ring_group", started + timedelta(seconds=5), "support")),
        **changes,
    )


def rich_call(call_id: str) -> CallRecord:
    """A record using every field, so that the JSON shape is exercised in full."""
    return call(
        call_id,
        minutes=30,
        outcome=Outcome.ANSWERED,
        reason=Reason.VOICEMAIL,
        short=True,
        answered_by="alice",
        voicemail=VoicemailResult(left=True, seconds=12, mailbox="sales@default"),
        followups=(Followup("sms", "sent", "+4930111111", T0, sent_at=T0, provider_id="SM1"),),
        host="pbx-1",
        extra={"note": "x"},
    )


@dataclass(frozen=True, slots=True)
class FakeOptOut:
    number: str
    source: str
    at: datetime


@dataclass
class FakeHistory:
    calls: dict[str, CallRecord] = field(default_factory=dict)
    opt_outs: dict[str, FakeOptOut] = field(default_factory=dict)
    is_healthy: bool = True
    broken: bool = False
    depth: dict[str, int] = field(default_factory=lambda: {"pending": 2, "sent": 7, "failed": 1})
    queries: list[dict[str, Any]] = field(default_factory=list)
    opt_out_calls: list[tuple[str, bool, str, datetime]] = field(default_factory=list)
    inbound_messages: set[tuple[str, str]] = field(default_factory=set)
    opt_out_failures: int = 0

    async def list_calls(
        self,
        *,
        limit: int,
        since: datetime | None,
        line: str | None,
        outcome: str | None,
        until: datetime | None = None,
    ) -> list[CallRecord]:
        query = {"limit": limit, "since": since, "line": line, "outcome": outcome}
        self.queries.append(query if until is None else query | {"until": until})
        found = [
            record
            for record in self.calls.values()
            if (since is None or record.started_at >= since)
            and (until is None or record.started_at < until)
            and (line is None or record.line == line)
            and (outcome is None or record.outcome == outcome)
        ]
        return sorted(found, key=lambda record: record.started_at, reverse=True)[:limit]

    async def get_call(self, call_id: str) -> CallRecord | None:
        return self.calls.get(call_id)

    async def healthy(self) -> bool:
        if self.broken:
            raise ConnectionError("database is gone")
        return self.is_healthy

    async def outbox_depth(self) -> dict[str, int]:
        if self.broken:
            raise ConnectionError("database is gone")
        return dict(self.depth)

    async def set_opt_out(self, number: str, opted_out: bool, source: str, now: datetime) -> None:
        if self.opt_out_failures:
            self.opt_out_failures -= 1
            raise ConnectionError("database is gone")
        self.opt_out_calls.append((number, opted_out, source, now))
        if opted_out:
            self.opt_outs.setdefault(number, FakeOptOut(number, source, now))
        else:
            self.opt_outs.pop(number, None)

    async def list_opt_outs(self) -> Sequence[FakeOptOut]:
        return [self.opt_outs[number] for number in sorted(self.opt_outs)]

    async def inbound_message_seen(self, provider: str, message_id: str) -> bool:
        return (provider, message_id) in self.inbound_messages

    async def remember_inbound_message(self, provider: str, message_id: str, now: datetime) -> bool:
        key = (provider, message_id)
        if key in self.inbound_messages:
            return False
        self.inbound_messages.add(key)
        return True


def snapshot() -> MetricsSnapshot:
    return MetricsSnapshot(
        calls_total={("sales", "missed", "ring_group_no_answer"): 3, ("sales", "answered", "answered"): 5},
        calls_in_progress=2,
        queue_waiting={"support": 1},
        queue_longest_wait_seconds={"support": 12.5},
        users={"available": 1, "busy": 1},
        ari_connected=True,
        ari_reconnects_total=4,
        event_lag_seconds=Histogram(buckets=((0.01, 90), (0.1, 99), (1.0, 100)), sum=0.75, count=101),
        outbox_failures_total=6,
        texts_sent_total=7,
        webhooks_sent_total=8,
    )


@dataclass
class FakeControl:
    ari: bool = True
    config: bool = True
    users: dict[str, str] = field(default_factory=lambda: {"alice": "available", "bob": "busy"})
    lines: dict[str, str] = field(default_factory=lambda: {"sales": "auto", "support": "closed"})
    waiting: dict[str, list[QueuedCaller]] = field(
        default_factory=lambda: {"support": [QueuedCaller("1714982400.7", "+4930111111", 12.5)]}
    )
    presence_changes: list[tuple[str, bool]] = field(default_factory=list)
    override_changes: list[tuple[str, str]] = field(default_factory=list)
    dialed: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    sounds_missing: dict[str, list[str]] = field(default_factory=dict)

    def ari_ready(self) -> bool:
        return self.ari

    def config_loaded(self) -> bool:
        return self.config

    def missing_sounds(self) -> dict[str, list[str]]:
        return self.sounds_missing

    def user_names(self) -> list[str]:
        return list(self.users)

    def line_names(self) -> list[str]:
        return list(self.lines)

    def presence(self, user: str) -> str:
        return self.users[user]

    def set_presence(self, user: str, away: bool) -> None:
        self.presence_changes.append((user, away))
        self.users[user] = "away" if away else "available"

    def line_override(self, line: str) -> str:
        return self.lines[line]

    def set_line_override(self, line: str, mode: str) -> None:
        self.override_changes.append((line, mode))
        self.lines[line] = mode

    def queues(self) -> dict[str, list[QueuedCaller]]:
        return self.waiting

    def metrics(self) -> MetricsSnapshot:
        return snapshot()

    def inbound_sms_secret(self, provider: str) -> tuple[str, str] | None:
        return {"twilio": ("twilio", "twilio-auth"), "hook": ("webhook", "hook-secret")}.get(provider)

    def dial(self, contact: str, line: str, user: str | None, ring_group: str | None) -> str:
        if line not in self.lines or (user is not None and user not in self.users):
            raise DialerRejected(Refusal.UNKNOWN, "unknown line or user")
        if user is not None and self.users[user] != "available":
            raise DialerRejected(Refusal.NOBODY_FREE, f"{user} is not free")
        self.dialed.append((contact, line, user, ring_group))
        return f"out-{len(self.dialed)}"


def fakes() -> tuple[FakeHistory, FakeControl]:
    history = FakeHistory(calls={c.id: c for c in (call("1714982400.1"), call("1714982400.2", minutes=10))})
    history.calls["1714982400.3"] = rich_call("1714982400.3")
    history.opt_outs["+4930999999"] = FakeOptOut("+4930999999", "sms_stop", T0)
    return history, FakeControl()


def inbox_config(control: FakeControl, voicemail_spool: str = "/nonexistent/voicemail") -> Config:
    """A config with the fakes' users and lines, for a real `InboxService` behind the API."""
    return Config(
        asterisk=AsteriskConfig(
            url="http://127.0.0.1:8088",
            username="callkeeper",
            password=Secret("ari"),
            voicemail_spool=voicemail_spool,
        ),
        lines={
            name: Line(name, (f"+493022222{index}",), Destination(DestinationKind.VOICEMAIL))
            for index, name in enumerate(control.lines)
        },
        users={name: User(name, f"PJSIP/{name}") for name in control.users},
    )


async def open_inbox(control: FakeControl, voicemail_spool: str = "/nonexistent/voicemail") -> InboxService:
    """An inbox over a fresh in-memory SQLite store (close it with `inbox.store.close()`)."""
    store = await open_store("sqlite:///:memory:", "host-a")
    config = inbox_config(control, voicemail_spool)
    return InboxService(store, lambda: config, control, clock=lambda: T0 + timedelta(hours=1))
