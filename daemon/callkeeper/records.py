"""The durable call record: what operators see through the API, the CLI and webhooks."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(enum.StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    ABANDONED = "abandoned"
    IGNORED = "ignored"


class Reason(enum.StrEnum):
    """The rule that decided a call's outcome (the fixed vocabulary of the API)."""

    WELCOME_HANGUP = "welcome_hangup"
    IVR_HANGUP = "ivr_hangup"
    IVR_HANGUP_AFTER_INPUT = "ivr_hangup_after_input"
    RING_GROUP_CALLER_HANGUP = "ring_group_caller_hangup"
    FISHING_HANGUP = "fishing_hangup"
    RING_GROUP_NO_ANSWER = "ring_group_no_answer"
    NO_AGENTS_AVAILABLE = "no_agents_available"
    QUEUE_CALLER_HANGUP = "queue_caller_hangup"
    QUEUE_MAX_WAIT = "queue_max_wait"
    PERSONAL_LINE_CALLER_HANGUP = "personal_line_caller_hangup"
    PERSONAL_LINE_NO_ANSWER = "personal_line_no_answer"
    AFTER_HOURS = "after_hours"
    VOICEMAIL = "voicemail"
    DEAD_END = "dead_end"
    ANSWERED = "answered"
    PROGRESSIVE_NO_ANSWER = "progressive_no_answer"
    PROGRESSIVE_USER_NO_ANSWER = "progressive_user_no_answer"
    UNKNOWN_NUMBER = "unknown_number"
    FAILURE = "failure"


REASON_WORDS: Mapping[Reason, str] = {
    Reason.WELCOME_HANGUP: "caller hung up during the welcome",
    Reason.IVR_HANGUP: "caller hung up in the menu before pressing a key",
    Reason.IVR_HANGUP_AFTER_INPUT: "caller hung up in the menu after pressing a key",
    Reason.RING_GROUP_CALLER_HANGUP: "caller gave up while the ring group rang",
    Reason.FISHING_HANGUP: "caller gave up while the ring group rang (fishing mode)",
    Reason.RING_GROUP_NO_ANSWER: "nobody in the ring group answered",
    Reason.NO_AGENTS_AVAILABLE: "nobody in the ring group was available",
    Reason.QUEUE_CALLER_HANGUP: "caller gave up waiting in the queue",
    Reason.QUEUE_MAX_WAIT: "caller waited the queue's longest wait",
    Reason.PERSONAL_LINE_CALLER_HANGUP: "caller gave up while the user's phone rang",
    Reason.PERSONAL_LINE_NO_ANSWER: "the user did not answer",
    Reason.AFTER_HOURS: "called outside business hours",
    Reason.VOICEMAIL: "sent to voicemail",
    Reason.DEAD_END: "routed to a dead end",
    Reason.ANSWERED: "talked to someone",
    Reason.PROGRESSIVE_NO_ANSWER: "the contact did not answer the dialer's call",
    Reason.PROGRESSIVE_USER_NO_ANSWER: "no user took the dialer's call",
    Reason.UNKNOWN_NUMBER: "dialled a number no line has",
    Reason.FAILURE: "callkeeper could not handle the call",
}
"""Each reason in words, for people reading records (`callkeeper calls`)."""


def utc_iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of a call's journey: `welcome`, `ivr`, `ring_group`, `queue`, `voicemail`, ..."""

    stage: str
    at: datetime
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "at": utc_iso(self.at), "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        at = parse_utc(data["at"])
        assert at is not None
        return cls(stage=str(data["stage"]), at=at, detail=str(data.get("detail", "")))


@dataclass(frozen=True, slots=True)
class VoicemailResult:
    left: bool
    seconds: int
    mailbox: str

    def to_json(self) -> dict[str, Any]:
        return {"left": self.left, "seconds": self.seconds, "mailbox": self.mailbox}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VoicemailResult:
        return cls(left=bool(data["left"]), seconds=int(data["seconds"]), mailbox=str(data["mailbox"]))


@dataclass(frozen=True, slots=True)
class Followup:
    """A follow-up text (or webhook) for this call, as the outbox knows it; `due_at` is when a text
    still waiting (delay, quiet hours, retry) will be sent."""

    kind: str
    status: str
    to: str
    created_at: datetime
    detail: str = ""
    sent_at: datetime | None = None
    provider_id: str | None = None
    due_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "to": self.to,
            "created_at": utc_iso(self.created_at),
            "due_at": utc_iso(self.due_at),
            "sent_at": utc_iso(self.sent_at),
            "provider_id": self.provider_id,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Followup:
        created = parse_utc(data["created_at"])
        assert created is not None
        return cls(
            kind=str(data["kind"]),
            status=str(data["status"]),
            to=str(data["to"]),
            created_at=created,
            detail=str(data.get("detail", "")),
            sent_at=parse_utc(data.get("sent_at")),
            provider_id=data.get("provider_id"),
            due_at=parse_utc(data.get("due_at")),
        )


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call, from arrival to verdict. `outcome` is None while the call is in progress."""

    id: str
    direction: Direction
    line: str | None
    caller: str
    dialed: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    reason: Reason | None = None
    short: bool = False
    answered_by: str | None = None
    voicemail: VoicemailResult | None = None
    steps: tuple[Step, ...] = ()
    followups: tuple[Followup, ...] = ()
    end_observed: bool = True
    host: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def customer(self) -> str:
        """The party outside the PBX: the caller of an inbound call, the dialed number of an outbound one."""
        return self.dialed if self.direction is Direction.OUTBOUND else self.caller

    @property
    def customer_answered(self) -> bool:
        """Whether the party outside the PBX talked to us. On an outbound call `answered_by` is set as soon as
        the user's phone answers, before the contact is even called: only the verdict says they answered."""
        if self.direction is Direction.OUTBOUND:
            return self.outcome is Outcome.ANSWERED
        return self.outcome is Outcome.ANSWERED or self.answered_by is not None

    def with_step(self, step: Step) -> CallRecord:
        return replace(self, steps=(*self.steps, step))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction.value,
            "line": self.line,
            "caller": self.caller,
            "dialed": self.dialed,
            "started_at": utc_iso(self.started_at),
            "ended_at": utc_iso(self.ended_at),
            "outcome": self.outcome.value if self.outcome else None,
            "reason": self.reason.value if self.reason else None,
            "short": self.short,
            "answered_by": self.answered_by,
            "voicemail": self.voicemail.to_json() if self.voicemail else None,
            "steps": [s.to_json() for s in self.steps],
            "followups": [f.to_json() for f in self.followups],
            "end_observed": self.end_observed,
            "host": self.host,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        started = parse_utc(data["started_at"])
        assert started is not None
        return cls(
            id=str(data["id"]),
            direction=Direction(data["direction"]),
            line=data.get("line"),
            caller=str(data["caller"]),
            dialed=str(data["dialed"]),
            started_at=started,
            ended_at=parse_utc(data.get("ended_at")),
            outcome=Outcome(data["outcome"]) if data.get("outcome") else None,
            reason=Reason(data["reason"]) if data.get("reason") else None,
            short=bool(data.get("short", False)),
            answered_by=data.get("answered_by"),
            voicemail=VoicemailResult.from_json(data["voicemail"]) if data.get("voicemail") else None,
            steps=tuple(Step.from_json(s) for s in data.get("steps", [])),
            followups=tuple(Followup.from_json(f) for f in data.get("followups", [])),
            end_observed=bool(data.get("end_observed", True)),
            host=str(data.get("host", "")),
            extra=dict(data.get("extra", {})),
        )


def now_utc() -> datetime:
    return datetime.now(UTC)
