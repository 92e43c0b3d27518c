"""A call's journey as facts, and the one place where its verdict is decided.

The engine appends facts as the call moves; `classify` is a pure function of them, so
every verdict can be replayed and tested from a recorded journey alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from callkeeper.records import Outcome, Reason, Step


class Stage(enum.StrEnum):
    ARRIVED = "arrived"
    ADOPTED = "adopted"  # a restarted daemon took the call over; the detail is where it was
    AFTER_HOURS = "after_hours"
    WELCOME = "welcome"
    IVR = "ivr"
    RING_GROUP = "ring_group"
    QUEUE = "queue"
    PERSONAL_LINE = "personal_line"
    EXTERNAL = "external"
    LINE = "line"
    MISSED_CALL_HANDLING = "missed_call_handling"
    PRESS_1 = "press_1"
    VOICEMAIL = "voicemail"
    DEAD_END = "dead_end"
    TALKING = "talking"
    DIALER_USER = "dialer_user"
    DIALER_CONTACT = "dialer_contact"
    DIALPLAN = "dialplan"  # handed to the PBX's own dialplan; the detail is CONTEXT,EXTEN,PRIORITY
    ENDED = "ended"


class RangOutWhy(enum.StrEnum):
    NO_ANSWER = "no_answer"
    NO_AGENTS = "no_agents"
    MAX_WAIT = "max_wait"


@dataclass(frozen=True, slots=True)
class Entered:
    stage: Stage
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DigitPressed:
    digit: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RangOut:
    """A ring group, queue or personal line gave up on the caller."""

    stage: Stage
    why: RangOutWhy
    at: datetime


@dataclass(frozen=True, slots=True)
class Answered:
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller left while the call was in `stage`; `fishing` if that stage was a fishing-mode group."""

    stage: Stage
    at: datetime
    fishing: bool = False


Fact = Entered | DigitPressed | RangOut | Answered | CallerHungUp


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: Reason
    short: bool = False


_RANG_OUT_REASONS = {
    (Stage.RING_GROUP, RangOutWhy.NO_ANSWER): Reason.RING_GROUP_NO_ANSWER,
    (Stage.RING_GROUP, RangOutWhy.NO_AGENTS): Reason.NO_AGENTS_AVAILABLE,
    (Stage.QUEUE, RangOutWhy.MAX_WAIT): Reason.QUEUE_MAX_WAIT,
    (Stage.QUEUE, RangOutWhy.NO_ANSWER): Reason.QUEUE_MAX_WAIT,
    (Stage.QUEUE, RangOutWhy.NO_AGENTS): Reason.NO_AGENTS_AVAILABLE,
    (Stage.PERSONAL_LINE, RangOutWhy.NO_ANSWER): Reason.PERSONAL_LINE_NO_ANSWER,
    (Stage.PERSONAL_LINE, RangOutWhy.NO_AGENTS): Reason.PERSONAL_LINE_NO_ANSWER,
    (Stage.EXTERNAL, RangOutWhy.NO_ANSWER): Reason.PERSONAL_LINE_NO_ANSWER,
}
# The progressive dialer: a contact who does not answer is abandoned; when no user could be
# reached the contact was never called, so nobody was let down.
_DIALER_VERDICTS = {
    Stage.DIALER_CONTACT: Verdict(Outcome.ABANDONED, Reason.PROGRESSIVE_NO_ANSWER),
    Stage.DIALER_USER: Verdict(Outcome.IGNORED, Reason.PROGRESSIVE_USER_NO_ANSWER),
}

_ENTRY_RULES = {
    Stage.AFTER_HOURS: Verdict(Outcome.MISSED, Reason.AFTER_HOURS),
    Stage.VOICEMAIL: Verdict(Outcome.MISSED, Reason.VOICEMAIL),
    Stage.PRESS_1: Verdict(Outcome.MISSED, Reason.VOICEMAIL),
    Stage.DEAD_END: Verdict(Outcome.IGNORED, Reason.DEAD_END),
}


def _hangup_verdict(fact: CallerHungUp, pressed_digit: bool) -> Verdict | None:
    match fact.stage:
        # A caller who leaves the handed-off dialplan before any queue, dial or voicemail left
        # during its announcements.
        case Stage.ARRIVED | Stage.WELCOME | Stage.LINE | Stage.DIALPLAN:
            return Verdict(Outcome.ABANDONED, Reason.WELCOME_HANGUP)
        case Stage.IVR:
            reason = Reason.IVR_HANGUP_AFTER_INPUT if pressed_digit else Reason.IVR_HANGUP
            return Verdict(Outcome.ABANDONED, reason)
        case Stage.RING_GROUP | Stage.QUEUE if fact.fishing:
            return Verdict(Outcome.ABANDONED, Reason.FISHING_HANGUP)
        case Stage.RING_GROUP:
            return Verdict(Outcome.MISSED, Reason.RING_GROUP_CALLER_HANGUP)
        case Stage.QUEUE:
            return Verdict(Outcome.MISSED, Reason.QUEUE_CALLER_HANGUP)
        case Stage.PERSONAL_LINE | Stage.EXTERNAL:
            return Verdict(Outcome.MISSED, Reason.PERSONAL_LINE_CALLER_HANGUP)
        case Stage.DIALER_USER | Stage.DIALER_CONTACT:
            return _DIALER_VERDICTS[fact.stage]
        case _:
            return None


def classify(
    facts: tuple[Fact, ...] | list[Fact],
    started_at: datetime,
    ended_at: datetime,
    short_abandon_seconds: int = 0,
) -> Verdict:
    """The verdict of a finished call: an answer anywhere wins; otherwise the first rule that fired."""
    first: Verdict | None = None
    pressed_digit = False
    for fact in facts:
        match fact:
            case Answered():
                return Verdict(Outcome.ANSWERED, Reason.ANSWERED)
            case DigitPressed():
                pressed_digit = True
            case _ if first is not None:
                continue
            case Entered(stage=stage) if stage in _ENTRY_RULES:
                first = _ENTRY_RULES[stage]
            case RangOut(stage=stage) if stage in _DIALER_VERDICTS:
                first = _DIALER_VERDICTS[stage]
            case RangOut(stage=stage, why=why):
                first = Verdict(Outcome.MISSED, _RANG_OUT_REASONS[(stage, why)])
            case CallerHungUp():
                first = _hangup_verdict(fact, pressed_digit)
    if first is None:
        # The call ended without a rule firing (e.g. a failure hung it up): nobody talked to the caller.
        first = Verdict(Outcome.MISSED, Reason.FAILURE)
    short = (
        short_abandon_seconds > 0
        and first.outcome in (Outcome.MISSED, Outcome.ABANDONED)
        and (ended_at - started_at).total_seconds() < short_abandon_seconds
    )
    return Verdict(first.outcome, first.reason, short)


def where(facts: list[Fact]) -> tuple[Stage, str]:
    """The stage a journey stopped in (talking once answered), and its detail."""
    for fact in reversed(facts):
        match fact:
            case Answered(by=by):
                return Stage.TALKING, by
            case Entered(stage=stage, detail=detail) if stage is not Stage.ADOPTED:
                return stage, detail
    return Stage.ARRIVED, ""


def facts_from_steps(steps: tuple[Step, ...]) -> list[Fact]:
    """The journey back from a stored record (a call adopted, or one whose end no daemon saw)."""
    facts: list[Fact] = []
    for step in steps:
        if step.stage == "dtmf":
            facts.append(DigitPressed(step.detail, step.at))
        elif step.stage == "answered":
            facts.append(Answered(step.detail, step.at))
        elif step.stage == "caller_hangup":
            stage, _, fishing = step.detail.partition(",")
            facts.append(CallerHungUp(Stage(stage), step.at, fishing == "fishing"))
        elif step.stage.endswith("_ended"):
            facts.append(RangOut(Stage(step.stage.removesuffix("_ended")), RangOutWhy(step.detail), step.at))
        else:
            facts.append(Entered(Stage(step.stage), step.at, step.detail))
    return facts


def step_of(fact: Fact) -> Step:
    """A fact as the call record stores it."""
    match fact:
        case Entered(stage=stage, at=at, detail=detail):
            return Step(stage.value, at, detail)
        case DigitPressed(digit=digit, at=at):
            return Step("dtmf", at, digit)
        case RangOut(stage=stage, why=why, at=at):
            return Step(f"{stage.value}_ended", at, why.value)
        case Answered(by=by, at=at):
            return Step("answered", at, by)
        case CallerHungUp(stage=stage, at=at, fishing=fishing):
            return Step("caller_hangup", at, f"{stage.value},fishing" if fishing else stage.value)
