"""Verdicts in the words of the receptionist who works the inbox."""

from __future__ import annotations

from callkeeper.records import REASON_WORDS, Outcome, Reason

_SHORT = "Hung up within seconds"


def reason_in_words(outcome: Outcome, reason: Reason, *, short: bool = False) -> str:
    """A short sentence for the verdict; `short` marks a short abandon (the caller gave up at once)."""
    if short and outcome is not Outcome.ANSWERED:
        return _SHORT
    return REASON_WORDS[reason]
