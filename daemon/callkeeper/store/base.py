"""What the daemon needs from durable storage, independent of the database behind it."""

from __future__ import annotations

import enum
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from callkeeper.inbox.model import InboxFilter, InboxItem, ReportCall
from callkeeper.records import CallRecord, Followup


class StoreError(Exception):
    """The store cannot be opened or used."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer callkeeper than this one."""


class OutboxKind(enum.StrEnum):
    SMS = "sms"
    WEBHOOK = "webhook"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"
    CANCELLED = "cancelled"


WAITING = frozenset({OutboxStatus.PENDING, OutboxStatus.SENDING})


def shown_url(url: str) -> str:
    """A webhook URL as records and the outbox show it: without user info, query and fragment, where
    receivers put their tokens (`https://crm.example.com/hook?token=...`)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One text or webhook to deliver exactly once.

    `idempotency_key` names the delivery (e.g. `sms:<call id>`): enqueueing it twice keeps the first, and
    senders pass it to the provider so that a send retried after a crash is not doubled there.
    """

    id: str
    idempotency_key: str
    kind: OutboxKind
    destination: str
    payload: dict[str, Any]
    status: OutboxStatus
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    call_id: str | None = None
    line: str | None = None
    attempts: int = 0
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    provider_id: str | None = None
    last_error: str | None = None
    sent_at: datetime | None = None

    @classmethod
    def new(
        cls,
        *,
        kind: OutboxKind,
        idempotency_key: str,
        destination: str,
        payload: dict[str, Any],
        now: datetime,
        call_id: str | None = None,
        line: str | None = None,
        not_before: datetime | None = None,
    ) -> OutboxItem:
        """A pending item, due at `not_before` (default: now)."""
        return cls(
            id=uuid.uuid4().hex,
            idempotency_key=idempotency_key,
            kind=kind,
            destination=destination,
            payload=payload,
            status=OutboxStatus.PENDING,
            next_attempt_at=not_before or now,
            created_at=now,
            updated_at=now,
            call_id=call_id,
            line=line,
        )

    def as_followup(self) -> Followup:
        """How the call record (API, webhooks) shows this item."""
        return Followup(
            kind=self.kind.value,
            status=self.status.value,
            to=shown_url(self.destination) if self.kind is OutboxKind.WEBHOOK else self.destination,
            created_at=self.created_at,
            detail=self.last_error or "",
            sent_at=self.sent_at,
            provider_id=self.provider_id,
            due_at=self.next_attempt_at if self.status in WAITING else None,
        )


@dataclass(frozen=True, slots=True)
class OptOut:
    number: str
    source: str
    at: datetime


class Store(Protocol):
    """Durable calls, outbox, opt-outs, texting windows and small daemon state.

    Every datetime passed in must be timezone-aware; every datetime returned is UTC. Several daemons may
    share one PostgreSQL database (or one SQLite file): every method is safe against the others.
    """

    host: str

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""

    async def save_call(self, record: CallRecord) -> None:
        """Insert or replace the call by id. A call that has ended is never reverted to in progress."""

    async def get_call(self, call_id: str) -> CallRecord | None: ...

    async def list_calls(
        self,
        *,
        limit: int = 50,
        since: datetime | None = None,
        line: str | None = None,
        outcome: str | None = None,
        until: datetime | None = None,
    ) -> list[CallRecord]:
        """Newest first by `started_at`; `since` is inclusive, `until` exclusive; `limit` is capped at
        1000. Records show no `followups` (`outbox_for_calls` has them)."""

    async def calls_of_number(self, number: str, limit: int) -> list[CallRecord]:
        """Calls from (inbound) or to (outbound) `number`, newest first; `limit` is capped at 1000."""

    async def open_calls(self, host: str | None = None) -> list[CallRecord]:
        """Calls without `ended_at` (of one host, or all), oldest first: what a restart must reconcile."""

    async def enqueue(self, item: OutboxItem) -> bool:
        """Store a new item; False (and nothing changes) if its idempotency key is already known."""

    async def claim_due(
        self, worker: str, now: datetime, limit: int = 10, lease_seconds: float = 60.0
    ) -> list[OutboxItem]:
        """Lease up to `limit` due items to `worker` (status `sending`, attempts + 1), oldest due first.

        Pending items due at `now` and `sending` items whose lease has expired (their worker died) are
        claimable. No two workers, in any process, ever hold the same item at once.
        """

    async def end_leases_of_host(self, host: str, now: datetime) -> int:
        """End now the leases of the workers of `host` (ids `<host>/...`, `OutboxWorker.new_id`): a
        daemon starting on `host` ends those its dead predecessor held, instead of waiting them out.
        Returns how many."""

    async def mark_sent(self, item_id: str, provider_id: str | None, now: datetime) -> bool:
        """Record delivery. Applies unless already sent (a late success still wins over a cancel)."""

    async def mark_failed(self, item_id: str, error: str, now: datetime, retry_at: datetime | None) -> bool:
        """Back to `pending` until `retry_at`, or `failed` for good when `retry_at` is None.

        Ignored (False) once the item is sent, failed or cancelled.
        """

    async def mark_held(self, item_id: str, reason: str, now: datetime) -> bool:
        """Park a pending or sending item (e.g. opted out meanwhile) until `release_held`."""

    async def release_held(self, item_id: str, next_attempt_at: datetime, now: datetime) -> bool: ...

    async def cancel(
        self,
        *,
        reason: str,
        now: datetime,
        item_id: str | None = None,
        call_id: str | None = None,
        kind: OutboxKind | None = None,
    ) -> int:
        """Cancel the undelivered (pending, sending, held) items of one id or one call; returns how many."""

    async def outbox_for_call(self, call_id: str) -> list[OutboxItem]:
        """Oldest first."""

    async def outbox_for_calls(self, call_ids: Sequence[str]) -> dict[str, list[OutboxItem]]:
        """`outbox_for_call` of several calls in one query; calls without items are left out."""

    async def outbox_depth(self) -> dict[str, int]:
        """Number of items per status, every status present."""

    async def set_opt_out(self, number: str, opted_out: bool, source: str, now: datetime) -> None: ...

    async def is_opted_out(self, number: str) -> bool: ...

    async def list_opt_outs(self) -> list[OptOut]:
        """Numbers currently opted out, by number."""

    async def reserve_text_window(self, number: str, line: str, window_seconds: float, now: datetime) -> bool:
        """Atomically claim the right to text `number` for `line`: True if no text was reserved within
        `window_seconds` before `now` (and `now` is recorded), False otherwise. Exactly one of several
        concurrent callers, on any host, gets True."""

    async def enqueue_text(self, item: OutboxItem, window_seconds: float) -> bool:
        """Reserve the caller's text window (`item.destination` on `item.line`, at `item.created_at`, as
        `reserve_text_window`) and enqueue `item`, atomically: True if both happened; False, and nothing
        changes, if the window is taken or the idempotency key is known. A crash never leaves a window
        reserved for a text that is not in the outbox."""

    async def last_text_to(self, number: str, line: str) -> datetime | None:
        """When the text window of `number` on `line` was last reserved."""

    async def count_texts_since(self, line: str | None, since: datetime) -> int:
        """Texts created at or after `since` that are sent or still on their way (pending, sending)."""

    async def remember_inbound_message(self, provider: str, message_id: str, now: datetime) -> bool:
        """Record a message a provider posted to us; False if it was recorded before (a replay)."""

    async def inbound_message_seen(self, provider: str, message_id: str) -> bool: ...

    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str | None) -> None:
        """Set a small value shared by restarts and hosts; None deletes it."""

    # The missed-call inbox. `save_call` of a final record updates it in the same transaction: a call not
    # answered joins the open item of its number (the caller, or the contact of an outbound call) and line,
    # or opens one; an answered one resolves the open items of its number on its line.

    async def inbox_items(self, where: InboxFilter) -> list[InboxItem]:
        """Newest first (by the latest missed call), at most `where.limit`."""

    async def inbox_item(self, call_id: str) -> InboxItem | None:
        """The item one of whose calls is `call_id`."""

    async def mark_inbox_handled(
        self, call_id: str, by: str, note: str | None, now: datetime
    ) -> InboxItem | None:
        """Close the item of `call_id` by hand; None if no item has that call. Raises
        `InboxAlreadyHandled` if it was handled before."""

    async def link_callback(self, call_id: str, callback_id: str, user: str) -> bool:
        """Make the outbound call `callback_id` (placed by `user`) a callback of the item of `call_id`: its
        final record resolves the item if the caller answered, else counts an attempt. False if no item
        has `call_id`."""

    async def inbox_version(self) -> int:
        """Grows with every change of any item, on every host sharing the store."""

    async def report_calls(
        self, since: datetime, until: datetime, lines: frozenset[str] | None
    ) -> list[ReportCall]:
        """Inbound calls that started in [since, until) and have ended, of `lines` (None: all)."""

    async def healthy(self) -> bool:
        """True if the store accepted a write just now."""

    async def close(self) -> None: ...
