"""Configs and call records for the follow-up tests: a London sales line that texts through Twilio."""

from __future__ import annotations

import asyncio
import time as wall_time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callkeeper.config.model import (
    AsteriskConfig,
    BusinessHours,
    Config,
    Destination,
    DestinationKind,
    FollowupText,
    Line,
    Secret,
    SmsProvider,
    SmsProviderType,
    TextLimits,
    TimeRange,
    User,
    Webhook,
)
from callkeeper.records import CallRecord, Direction, Outcome, Reason

LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 in London (GMT)
LINE_NUMBER = "+442079460000"
SENDER = "+447400000001"
MOBILE = "+447400123456"  # GB mobile
OTHER_MOBILE = "+447400654321"
FRENCH_MOBILE = "+33612345678"
GB_LANDLINE = "+442079460123"
SID = "AC0123456789abcdef"
TOKEN = "tw-t0ken-s3cret"
DEFAULT_LIMITS = TextLimits()
OFFICE = BusinessHours({day: (TimeRange(time(9), time(17)),) for day in range(5)})


def followup_text(**changes: Any) -> FollowupText:
    text = FollowupText(
        provider="twilio",
        sender=SENDER,
        on=frozenset({"missed", "abandoned", "outbound_abandoned"}),
        delay_seconds=60,
        once_per_caller_hours=24,
        messages={"missed": "Missed you at {line_name} ({line_number}), {caller}."},
    )
    return replace(text, **changes)


def line(name: str = "sales", text: FollowupText | None = None, **changes: Any) -> Line:
    built = Line(
        name=name,
        numbers=(LINE_NUMBER,) if name == "sales" else ("+442079460001",),
        route=Destination(DestinationKind.VOICEMAIL),
        timezone=LONDON,
        business_hours=OFFICE,
        followup_text=text or followup_text(),
    )
    return replace(built, **changes)


def twilio(base_url: str = "https://api.twilio.com") -> SmsProvider:
    return SmsProvider(
        "twilio",
        SmsProviderType.TWILIO,
        {"account_sid": SID, "auth_token": Secret(TOKEN), "base_url": base_url},
    )


def config(
    *lines: Line,
    providers: Mapping[str, SmsProvider] | None = None,
    webhooks: tuple[Webhook, ...] = (),
    limits: TextLimits = DEFAULT_LIMITS,
) -> Config:
    chosen = lines or (line(),)
    return Config(
        asterisk=AsteriskConfig(url="http://127.0.0.1:1", username="ck", password=Secret("ari-pw")),
        lines={item.name: item for item in chosen},
        users={"alice": User("alice", "PJSIP/alice")},
        sms_providers=providers if providers is not None else {"twilio": twilio()},
        webhooks=webhooks,
        rate_limits=limits,
    )


def call(
    call_id: str = "call-1",
    *,
    caller: str = MOBILE,
    dialed: str = LINE_NUMBER,
    outcome: Outcome = Outcome.MISSED,
    reason: Reason = Reason.RING_GROUP_NO_ANSWER,
    started_at: datetime = T0 - timedelta(seconds=40),
    ended_at: datetime = T0,
    direction: Direction = Direction.INBOUND,
    line_name: str = "sales",
    short: bool = False,
    answered_by: str | None = None,
) -> CallRecord:
    return CallRecord(
        id=call_id,
        direction=direction,
        line=line_name,
        caller=caller,
        dialed=dialed,
        started_at=started_at,
        ended_at=ended_at,
        outcome=outcome,
        reason=reason,
        short=short,
        answered_by=answered_by,
    )


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def eventually(check: Callable[[], object], within: float = 5.0) -> None:
    """Polls `check` (sync, or returning an awaitable) until it is truthy."""
    deadline = wall_time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if wall_time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
