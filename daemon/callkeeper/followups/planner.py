"""What the outbox gets for a call: at most one follow-up text and one webhook per configured URL and event.

Idempotency keys name the delivery (`sms:<call id>`, `webhook:<event>:<subject>:<url tag>`), so planning
the same call twice (a replay after a restart) enqueues nothing new.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta
from typing import Any

from callkeeper.config.model import Config
from callkeeper.followups import rules
from callkeeper.records import CallRecord, Followup, utc_iso
from callkeeper.store.base import OutboxItem, OutboxKind, OutboxStatus, Store, shown_url

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def text_key(call_id: str) -> str:
    return f"sms:{call_id}"


def webhook_tag(url: str) -> str:
    """Names a configured webhook in the outbox without its URL, which may carry a token."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def webhook_key(event: str, subject: str, url: str) -> str:
    """`subject` is what the event is about: a call id, or a text's idempotency key."""
    return f"webhook:{event}:{subject}:{webhook_tag(url)}"


def call_body(event: str, record: CallRecord, now: datetime) -> dict[str, Any]:
    return {"event": event, "at": utc_iso(now), "call": record.to_json()}


def followup_body(event: str, item: OutboxItem, followup: Followup, now: datetime) -> dict[str, Any]:
    return {
        "event": event,
        "at": utc_iso(now),
        "call_id": item.call_id,
        "line": item.line,
        "followup": followup.to_json(),
    }


class FollowupPlanner:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    async def plan_text(self, record: CallRecord, now: datetime) -> OutboxItem | None:
        """The text for a finished call: pending (due after the line's delay and quiet hours), held, or
        cancelled, the last two with the reason in `last_error`. None when the line texts nobody after
        such a call, or the call already has its text.

        A pending text is enqueued with `Store.enqueue_text`, which reserves the caller's text window
        in the same transaction (`window_seconds`); if the window is taken, `window_taken` is the text
        to enqueue instead."""
        line = self.config.lines.get(record.line) if record.line is not None else None
        text = line.followup_text if line is not None else None
        if line is None or text is None or record.outcome is None:
            return None
        if any(item.kind is OutboxKind.SMS for item in await self.store.outbox_for_call(record.id)):
            return None
        raw = record.customer
        refusal = rules.not_followed_up(record)
        if refusal is not None:
            return self._refused(record, raw, refusal, now, {})
        event = rules.text_event(record)
        if event is None or event not in text.on:
            return None
        if record.short:
            return self._refused(record, raw, rules.Refusal("short_abandon"), now, {"event": event})
        screened = rules.screen_caller(raw, line, text, self.config)
        if isinstance(screened, rules.Refusal):
            return self._refused(record, raw, screened, now, {"event": event})
        number = screened.number
        values = rules.template_values(record, line, number, now)
        payload = {
            "provider": text.provider,
            "from": text.sender,
            "body": rules.render(text, rules.message_key(record, event), values),
            "event": event,
            "call_started_at": utc_iso(record.started_at),
        }
        guard = rules.outside_countries(screened, line, text) or await self._guard(number, line.name, now)
        if guard is not None:
            return self._refused(record, number, guard, now, payload)
        return OutboxItem.new(
            kind=OutboxKind.SMS,
            idempotency_key=text_key(record.id),
            destination=number,
            payload=payload,
            now=now,
            call_id=record.id,
            line=line.name,
            not_before=rules.first_attempt_at(now, text, line.timezone),
        )

    def window_seconds(self, item: OutboxItem) -> float:
        """How long after `item` its caller is not texted again on its line."""
        line = self.config.lines.get(item.line or "")
        text = line.followup_text if line is not None else None
        if text is None:
            raise ValueError(f"line {item.line!r} sends no texts")
        return text.once_per_caller_hours * 3600.0

    @staticmethod
    def window_taken(item: OutboxItem) -> OutboxItem:
        """`item`, refused: its caller was texted on its line within the window."""
        return dataclasses.replace(
            item,
            status=OutboxStatus.CANCELLED,
            last_error="texted_within_window",
            next_attempt_at=item.created_at,
        )

    async def _guard(self, number: str, line: str, now: datetime) -> rules.Refusal | None:
        """Opt-outs and the SMS-pumping caps; a held text may be released once the cause is gone."""
        if await self.store.is_opted_out(number):
            return rules.Refusal("opted_out", held=True)
        limits = self.config.rate_limits
        if await self.store.count_texts_since(line, now - HOUR) >= limits.per_line_per_hour:
            return rules.Refusal("line_rate_limit", held=True)
        if await self.store.count_texts_since(None, now - HOUR) >= limits.global_per_hour:
            return rules.Refusal("global_rate_limit", held=True)
        if await self.store.count_texts_since(None, now - DAY) >= limits.daily_cap:
            return rules.Refusal("daily_cap", held=True)
        return None

    def _refused(
        self, record: CallRecord, to: str, refusal: rules.Refusal, now: datetime, payload: dict[str, Any]
    ) -> OutboxItem:
        item = OutboxItem.new(
            kind=OutboxKind.SMS,
            idempotency_key=text_key(record.id),
            destination=to.strip() or "anonymous",
            payload=payload,
            now=now,
            call_id=record.id,
            line=record.line,
        )
        status = OutboxStatus.HELD if refusal.held else OutboxStatus.CANCELLED
        return dataclasses.replace(item, status=status, last_error=refusal.reason)

    def plan_webhooks(
        self,
        event: str,
        *,
        subject: str,
        body: dict[str, Any],
        now: datetime,
        call_id: str | None,
        line: str | None,
    ) -> list[OutboxItem]:
        """One pending item per webhook subscribed to `event`, all due now. The outbox keeps the URL as
        `shown_url` shows it and the webhook's tag; the worker finds the URL itself in the config."""
        return [
            OutboxItem.new(
                kind=OutboxKind.WEBHOOK,
                idempotency_key=webhook_key(event, subject, hook.url),
                destination=shown_url(hook.url),
                payload={"event": event, "body": body, "hook": webhook_tag(hook.url)},
                now=now,
                call_id=call_id,
                line=line,
            )
            for hook in self.config.webhooks
            if event in hook.events
        ]
