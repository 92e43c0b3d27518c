"""The live daemon as the HTTP API sees it: presence, line overrides, queues and metrics, read
from the engine without I/O; changes go through the engine (in order with ARI events) and are
kept in the store so a restart remembers them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import phonenumbers
import structlog

from callkeeper.calls import inputs as ev
from callkeeper.calls.hours import parse_override
from callkeeper.config.model import Line, Secret
from callkeeper.followups.service import FollowupService
from callkeeper.live import DialerRejected, MetricsSnapshot, QueuedCaller, Refusal
from callkeeper.records import CallRecord, now_utc
from callkeeper.service.call_runner import CallService
from callkeeper.service.tasks import Tasks
from callkeeper.store.base import OptOut, Store
from callkeeper.tollfraud import dial_out_refusal

log = structlog.get_logger(__name__)

AWAY_KEY = "presence.away"
OVERRIDE_KEY = "line.override."
PERSIST_GRACE_SECONDS = 2.0


def dialer_refusal(number: str, line: Line) -> str | None:
    """Toll-fraud guard: why the dialer must not call `number`. It calls only numbers the toll-fraud
    rules allow, of the line's own country (or the countries its follow-up texts may go to)."""
    refusal = dial_out_refusal(number)
    if refusal is not None:
        return refusal
    parsed = phonenumbers.parse(number)
    allowed = set(line.followup_text.allowed_countries) if line.followup_text else set()
    for own in line.numbers:
        if own.startswith("+"):
            allowed.add(phonenumbers.region_code_for_number(phonenumbers.parse(own)) or "")
    if phonenumbers.region_code_for_number(parsed) not in allowed:
        return f"{number} is not a number in this line's country"
    return None


class CallHistoryWithFollowups:
    """The store as the API reads it, with each record showing its texts and webhooks."""

    def __init__(self, store: Store, followups: FollowupService) -> None:
        self.store = store
        self.followups = followups

    async def list_calls(
        self,
        *,
        limit: int,
        since: datetime | None,
        line: str | None,
        outcome: str | None,
        until: datetime | None = None,
    ) -> list[CallRecord]:
        records = await self.store.list_calls(
            limit=limit, since=since, line=line, outcome=outcome, until=until
        )
        outbox = await self.store.outbox_for_calls([record.id for record in records])
        return [
            replace(record, followups=tuple(item.as_followup() for item in outbox.get(record.id, ())))
            for record in records
        ]

    async def get_call(self, call_id: str) -> CallRecord | None:
        record = await self.store.get_call(call_id)
        if record is None:
            return None
        return replace(record, followups=tuple(await self.followups.followups_for(call_id)))

    async def healthy(self) -> bool:
        return await self.store.healthy()

    async def outbox_depth(self) -> dict[str, int]:
        return await self.store.outbox_depth()

    async def set_opt_out(self, number: str, opted_out: bool, source: str, now: datetime) -> None:
        await self.store.set_opt_out(number, opted_out, source, now)

    async def list_opt_outs(self) -> Sequence[OptOut]:
        return await self.store.list_opt_outs()

    async def inbound_message_seen(self, provider: str, message_id: str) -> bool:
        return await self.store.inbound_message_seen(provider, message_id)

    async def remember_inbound_message(self, provider: str, message_id: str, now: datetime) -> bool:
        return await self.store.remember_inbound_message(provider, message_id, now)


class LiveDaemon:
    def __init__(
        self,
        service: CallService,
        store: Store,
        followups: FollowupService,
        ari_ready: Callable[[], bool],
        reconnects: Callable[[], int],
        *,
        missing_sounds: Callable[[], Mapping[str, Sequence[str]]] = dict,
    ) -> None:
        self.service = service
        self.store = store
        self.followups = followups
        self._ari_ready = ari_ready
        self._reconnects = reconnects
        self._missing_sounds = missing_sounds
        self._writes = Tasks()

    async def restore(self) -> None:
        """Presence and overrides set through the API before a restart."""
        away = await self.store.get_state(AWAY_KEY)
        now = now_utc()
        for user in filter(None, (away or "").split(",")):
            self.service.feed(ev.PresenceChanged(user, True, now))
        for line in self.line_names():
            mode = await self.store.get_state(OVERRIDE_KEY + line)
            if mode:
                self.service.feed(ev.LineOverrideChanged(line, parse_override(mode), now))

    def _persist(self, key: str, value: str | None) -> None:
        self._writes.start(self.store.set_state(key, value), name=f"persist-{key}")

    async def close(self) -> None:
        """Presence and overrides set just before the stop are still kept, if the store allows."""
        await self._writes.close(PERSIST_GRACE_SECONDS)

    def ari_ready(self) -> bool:
        return self._ari_ready()

    def config_loaded(self) -> bool:
        return True

    def missing_sounds(self) -> Mapping[str, Sequence[str]]:
        return self._missing_sounds()

    def user_names(self) -> Sequence[str]:
        return list(self.service.engine.config.users)

    def line_names(self) -> Sequence[str]:
        return list(self.service.engine.config.lines)

    def presence(self, user: str) -> str:
        return self.service.engine.presence(user)

    def set_presence(self, user: str, away: bool) -> None:
        self.service.feed(ev.PresenceChanged(user, away, now_utc()))
        self._persist(AWAY_KEY, ",".join(self.service.engine.away()) or None)

    def line_override(self, line: str) -> str:
        return self.service.engine.line_override(line)

    def set_line_override(self, line: str, mode: str) -> None:
        self.service.feed(ev.LineOverrideChanged(line, parse_override(mode), now_utc()))
        self._persist(OVERRIDE_KEY + line, None if mode == "auto" else mode)

    def queues(self) -> Mapping[str, Sequence[QueuedCaller]]:
        now = now_utc()
        return {
            group: [QueuedCaller(w.call_id, w.caller, (now - w.since).total_seconds()) for w in waiting]
            for group, waiting in self.service.engine.queue_waiters().items()
        }

    def inbound_sms_secret(self, provider: str) -> tuple[str, str] | None:
        found = self.service.engine.config.sms_providers.get(provider)
        key = {"twilio": "auth_token", "webhook": "secret"}.get(found.type.value) if found else None
        if found is None or key is None or key not in found.settings:
            return None
        secret = found.settings[key]
        return found.type.value, secret.value if isinstance(secret, Secret) else str(secret)

    def dial(self, contact: str, line: str, user: str | None, ring_group: str | None) -> str:
        engine = self.service.engine
        config = engine.config
        found = config.lines.get(line)
        if found is None:
            raise DialerRejected(Refusal.UNKNOWN, f"no line {line!r}")
        if user is not None and user not in config.users:
            raise DialerRejected(Refusal.UNKNOWN, f"no user {user!r}")
        if ring_group is not None and ring_group not in config.ring_groups:
            raise DialerRejected(Refusal.UNKNOWN, f"no ring group {ring_group!r}")
        refusal = dialer_refusal(contact, found)
        if refusal is not None:
            raise DialerRejected(Refusal.NOT_DIALABLE, refusal)
        if engine.free_user(user, ring_group) is None:
            raise DialerRejected(Refusal.NOBODY_FREE, "nobody is free to take the call")
        call_id = f"out-{uuid.uuid4().hex[:16]}"
        self.service.feed(ev.DialerRequested(call_id, line, contact, user, ring_group, now_utc()))
        return call_id

    def metrics(self) -> MetricsSnapshot:
        service = self.service
        users: dict[str, int] = {"available": 0, "busy": 0, "away": 0, "offline": 0}
        for user in self.user_names():
            users[self.presence(user)] += 1
        queues = self.queues()
        return MetricsSnapshot(
            calls_total=dict(service.counters.verdicts),
            calls_in_progress=service.calls_in_progress(),
            queue_waiting={group: len(callers) for group, callers in queues.items()},
            queue_longest_wait_seconds={
                group: max((c.waiting_seconds for c in callers), default=0.0)
                for group, callers in queues.items()
            },
            users=users,
            ari_connected=self._ari_ready(),
            ari_reconnects_total=self._reconnects(),
            event_lag_seconds=service.counters.event_lag.snapshot(),
            outbox_failures_total=self.followups.outbox_failures_total,
            texts_sent_total=self.followups.texts_sent_total,
            webhooks_sent_total=self.followups.webhooks_sent_total,
        )
