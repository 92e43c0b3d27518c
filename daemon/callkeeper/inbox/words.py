"""Verdicts in the words of the receptionist who works the inbox."""

from __future__ import annotations

from callkeeper.records import Outcome, Reason

_WORDS: dict[Reason, str] = {
    Reason.WELCOME_HANGUP: "Hung up during the welcome message",
    Reason.IVR_HANGUP: "Hung up in the menu before choosing",
    Reason.IVR_HANGUP_AFTER_INPUT: "Hung up in the menu after choosing",
    Reason.RING_GROUP_CALLER_HANGUP: "Hung up while the phones rang",
    Reason.FISHING_HANGUP: "Hung up while the phones rang",
    Reason.RING_GROUP_NO_ANSWER: "Nobody answered",
    Reason.NO_AGENTS_AVAILABLE: "Nobody was available to answer",
    Reason.QUEUE_CALLER_HANGUP: "Hung up while waiting in the queue",
    Reason.QUEUE_MAX_WAIT: "Waited too long in the queue",
    Reason.PERSONAL_LINE_CALLER_HANGUP: "Hung up while the phone rang",
    Reason.PERSONAL_LINE_NO_ANSWER: "Nobody answered",
    Reason.AFTER_HOURS: "Called while closed",
    Reason.VOICEMAIL: "Sent to voicemail",
    Reason.DEAD_END: "Ended on purpose (dead end)",
    Reason.ANSWERED: "Answered",
    Reason.PROGRESSIVE_NO_ANSWER: "We called; they did not answer",
    Reason.PROGRESSIVE_USER_NO_ANSWER: "We tried to call; our phone did not answer",
    Reason.UNKNOWN_NUMBER: "Called a number no line owns",
    Reason.FAILURE: "Call failed on our side",
}

_SHORT = "Hung up within seconds"


def reason_in_words(outcome: Outcome, reason: Reason, *, short: bool = False) -> str:
    """A short sentence for the verdict; `short` marks a short abandon (the caller gave up at once)."""
    if short and outcome is not Outcome.ANSWERED:
        return _SHORT
    return _WORDS[reason]
