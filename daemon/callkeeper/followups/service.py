"""Follow-up texts and webhooks as the daemon sees them: hand over each finished call, tell about
answered calls, read the counters. Everything goes through the durable outbox; nothing here runs on
the call path except planning, which only talks to the store."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import aiohttp
import structlog

from callkeeper.ari.backoff import ExponentialBackoff
from callkeeper.ari.rest import AriRestClient
from callkeeper.config.model import Config
from callkeeper.followups import rules
from callkeeper.followups.planner import FollowupPlanner, call_body, followup_body, webhook_tag
from callkeeper.followups.providers import DeliveryError, SmsMessage, dump_body, post_signed, sms_sender
from callkeeper.followups.worker import (
    Cancelled,
    Clock,
    Delivery,
    Failed,
    Held,
    OutboxSettings,
    OutboxWorker,
    Postponed,
    Sent,
    Sleep,
)
from callkeeper.records import CallRecord, Followup, now_utc, parse_utc
from callkeeper.store.base import OutboxItem, OutboxKind, OutboxStatus, Store

log = structlog.get_logger(__name__)

ANSWERED_LATER = "answered_on_later_call"
# How many calls since a missed one are searched for the caller being answered meanwhile.
ANSWERED_SEARCH_LIMIT = 1000
# A pending text this host planned but another host sent is forgotten after this long.
PENDING_MEMORY = timedelta(days=1)
DEFAULT_SETTINGS = OutboxSettings()


class FollowupService:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        session: aiohttp.ClientSession,
        host: str,
        ari_rest: AriRestClient | None = None,
        clock: Clock = now_utc,
        settings: OutboxSettings = DEFAULT_SETTINGS,
        sleep: Sleep = asyncio.sleep,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        self.store = store
        self._session = session
        self._ari_rest = ari_rest
        self._clock = clock
        self._timeout = settings.send_timeout_seconds
        self.reload(config)
        # Texts planned here and not yet sent, by number: item id -> (start of the call, due at).
        self._pending: dict[str, dict[str, tuple[datetime, datetime]]] = {}
        self.worker = OutboxWorker(
            store,
            self,
            worker_id=OutboxWorker.new_id(host),
            clock=clock,
            settings=settings,
            sleep=sleep,
            backoff=backoff,
        )

    # ------------------------------------------------------------ the daemon's side

    def reload(self, config: Config) -> None:
        """Follow-ups planned from now on use `config` (SIGHUP); what is in the outbox keeps its plan."""
        self.config = config
        self.planner = FollowupPlanner(config, self.store)
        self._senders = {
            name: sms_sender(provider, self._session, self._ari_rest, self._timeout)
            for name, provider in config.sms_providers.items()
        }
        self._regions = frozenset(
            region
            for line in config.lines.values()
            if (region := rules.line_region(line, line.followup_text.sender if line.followup_text else None))
        )

    def start(self) -> None:
        self.worker.start()

    async def close(self) -> None:
        await self.worker.close()

    @property
    def texts_sent_total(self) -> int:
        return self.worker.counters.sent[OutboxKind.SMS]

    @property
    def webhooks_sent_total(self) -> int:
        return self.worker.counters.sent[OutboxKind.WEBHOOK]

    @property
    def outbox_failures_total(self) -> int:
        return self.worker.counters.failures

    async def on_call_started(self, record: CallRecord) -> None:
        """`call.started` webhooks."""
        await self._enqueue_webhooks(
            "call.started",
            record.id,
            call_body("call.started", record, self._clock()),
            record.id,
            record.line,
        )

    async def on_call_finished(self, record: CallRecord) -> None:
        """Plan and enqueue the call's text and its `call.ended` webhooks. Safe to repeat for a call
        (after a restart): nothing is enqueued twice. Raises if the store fails."""
        now = self._clock()
        text = await self.planner.plan_text(record, now)
        followups = record.followups
        if text is not None:
            text = await self._enqueue_text(text)
            followups = (text.as_followup(),)
        body = call_body("call.ended", dataclasses.replace(record, followups=followups), now)
        await self._enqueue_webhooks("call.ended", record.id, body, record.id, record.line)

    async def on_call_answered(self, caller: str, at: datetime) -> int:
        """A call from (or to) `caller` was answered at `at`: cancel the texts planned here for earlier
        calls of the same number that are still waiting. Returns how many were cancelled. Texts planned
        by another host, or before a restart, are checked when they are due instead."""
        cancelled = 0
        for number in rules.readings(caller, self._regions) & self._pending.keys():
            waiting = self._pending[number]
            for item_id, (started, _) in list(waiting.items()):
                if started < at:
                    del waiting[item_id]
                    cancelled += await self.store.cancel(
                        reason=ANSWERED_LATER, now=self._clock(), item_id=item_id
                    )
            if not waiting:
                del self._pending[number]
        return cancelled

    async def followups_for(self, call_id: str) -> list[Followup]:
        """The call's texts and webhooks, oldest first, as the call record shows them."""
        return [item.as_followup() for item in await self.store.outbox_for_call(call_id)]

    # ------------------------------------------------------------ the worker's side

    async def deliver(self, item: OutboxItem) -> Delivery:
        if item.kind is OutboxKind.WEBHOOK:
            return await self._deliver_webhook(item)
        delivery = await self._deliver_text(item)
        if not isinstance(delivery, Failed | Postponed):  # no longer waiting
            self._forget(item)
        return delivery

    async def gave_up(self, item: OutboxItem, error: str) -> None:
        if item.kind is OutboxKind.SMS:
            self._forget(item)
            followup = dataclasses.replace(item.as_followup(), status=OutboxStatus.FAILED.value, detail=error)
            await self._announce("followup.failed", item, followup)

    def not_before(self, item: OutboxItem, moment: datetime) -> datetime:
        line = self.config.lines.get(item.line) if item.line is not None else None
        if item.kind is not OutboxKind.SMS or line is None or line.followup_text is None:
            return moment
        return rules.after_quiet_hours(moment, line.followup_text.quiet_hours, line.timezone)

    async def _deliver_text(self, item: OutboxItem) -> Delivery:
        payload = item.payload
        sender = self._senders.get(str(payload.get("provider")))
        if sender is None:
            return Failed(f"no sms provider {payload.get('provider')!r} is configured", retryable=False)
        now = self._clock()
        due = self.not_before(item, now)
        if due > now:
            return Postponed(due, "quiet_hours")
        if await self.store.is_opted_out(item.destination):
            return Held("opted_out")
        if await self._answered_since(item):
            return Cancelled(ANSWERED_LATER)
        message = SmsMessage(
            to=item.destination,
            sender=str(payload["from"]),
            body=str(payload["body"]),
            call_id=item.call_id,
            idempotency_key=item.idempotency_key,
        )
        try:
            provider_id = await sender.send(message)
        except DeliveryError as error:
            return Failed(str(error), error.retryable)
        followup = dataclasses.replace(
            item.as_followup(), status=OutboxStatus.SENT.value, sent_at=self._clock(), provider_id=provider_id
        )
        await self._announce("followup.sent", item, followup)
        return Sent(provider_id)

    async def _deliver_webhook(self, item: OutboxItem) -> Delivery:
        tag = item.payload.get("hook")
        hook = next(
            (
                hook
                for hook in self.config.webhooks
                if webhook_tag(hook.url) == tag or hook.url == item.destination
            ),
            None,
        )
        if hook is None:
            return Failed("the webhook is no longer configured", retryable=False)
        secret = hook.secret.value if hook.secret is not None else None
        try:
            await post_signed(
                self._session,
                hook.url,
                dump_body(item.payload["body"]),
                secret=secret,
                idempotency_key=item.idempotency_key,
                timeout_seconds=self._timeout,
            )
        except DeliveryError as error:
            return Failed(str(error), error.retryable)
        return Sent(None)

    async def _answered_since(self, item: OutboxItem) -> bool:
        """Whether the number was answered on a call that started after the one this text is about."""
        started = parse_utc(item.payload.get("call_started_at"))
        if started is None:
            return False
        for record in await self.store.list_calls(since=started, limit=ANSWERED_SEARCH_LIMIT):
            if (
                record.customer_answered
                and record.id != item.call_id
                and record.started_at > started
                and item.destination in rules.readings(record.customer, self._regions)
            ):
                return True
        return False

    # ------------------------------------------------------------ enqueueing

    async def _enqueue_text(self, item: OutboxItem) -> OutboxItem:
        """Enqueue the planned text; returns it as enqueued (refused if the caller's window was taken)."""
        if item.status is OutboxStatus.PENDING:
            if await self.store.enqueue_text(item, self.planner.window_seconds(item)):
                self._remember(item)
                self.worker.wake(item.next_attempt_at)
                log.info("followup_planned", call_id=item.call_id, status=item.status.value, reason=None)
                return item
            item = self.planner.window_taken(item)
        if item.status is OutboxStatus.CANCELLED:
            # The store takes new items pending or held only; a crash before the cancel leaves it held.
            if await self.store.enqueue(dataclasses.replace(item, status=OutboxStatus.HELD)):
                await self.store.cancel(reason=item.last_error or "", now=item.created_at, item_id=item.id)
        else:
            await self.store.enqueue(item)
        log.info("followup_planned", call_id=item.call_id, status=item.status.value, reason=item.last_error)
        return item

    async def _enqueue_webhooks(
        self, event: str, subject: str, body: dict[str, object], call_id: str | None, line: str | None
    ) -> None:
        items = self.planner.plan_webhooks(
            event, subject=subject, body=body, now=self._clock(), call_id=call_id, line=line
        )
        woken = False
        for item in items:
            woken = await self.store.enqueue(item) or woken
        if woken:
            self.worker.wake()

    async def _announce(self, event: str, item: OutboxItem, followup: Followup) -> None:
        """`followup.*` webhooks for a text. Enqueued before the text is marked: a crash in between
        repeats the send (deduplicated by key), never loses the webhook. A store failure here loses the
        webhook rather than repeating a text."""
        try:
            body = followup_body(event, item, followup, self._clock())
            await self._enqueue_webhooks(event, item.idempotency_key, body, item.call_id, item.line)
        except Exception as error:
            log.warning("followup_webhook_lost", event=event, item=item.id, error=repr(error))

    def _remember(self, item: OutboxItem) -> None:
        started = parse_utc(item.payload.get("call_started_at")) or item.created_at
        horizon = self._clock() - PENDING_MEMORY
        for number in list(self._pending):
            waiting = self._pending[number]
            for item_id in [i for i, (_, due) in waiting.items() if due < horizon]:
                del waiting[item_id]
            if not waiting:
                del self._pending[number]
        self._pending.setdefault(item.destination, {})[item.id] = (started, item.next_attempt_at)

    def _forget(self, item: OutboxItem) -> None:
        waiting = self._pending.get(item.destination)
        if waiting is not None:
            waiting.pop(item.id, None)
            if not waiting:
                del self._pending[item.destination]
