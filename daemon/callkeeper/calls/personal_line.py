"""A user's personal line (their phone, then their backup number) and outside numbers."""

from __future__ import annotations

from datetime import datetime

from callkeeper.calls.actions import Timer
from callkeeper.calls.call import (
    EXTERNAL_RING_SECONDS,
    PERSONAL_RING_SECONDS,
    AttemptOver,
    Call,
    Next,
    Ringing,
)
from callkeeper.calls.journey import Entered, Stage
from callkeeper.calls.switchboard import Switchboard


def start(call: Call, board: Switchboard, user: str, at: datetime) -> Next:
    call.facts.append(Entered(Stage.PERSONAL_LINE, at, user))
    backup = call.config.users[user].backup_number
    ringing = Ringing(Stage.PERSONAL_LINE, None, 0, (backup,) if backup else ())
    if not board.available(call.config, user):
        return Next([], ringing, AttemptOver(ringing))
    out = call.dial_user(user, PERSONAL_RING_SECONDS)
    out += [*call.ringback(), call.timer(Timer.RING, PERSONAL_RING_SECONDS)]
    return Next(out, ringing)


def ring_backup(call: Call, number: str, at: datetime) -> Next:
    call.facts.append(Entered(Stage.PERSONAL_LINE, at, f"backup {number}"))
    return Next(call.dial_external(number, PERSONAL_RING_SECONDS), Ringing(Stage.PERSONAL_LINE, None, 0, ()))


def start_external(call: Call, number: str, at: datetime) -> Next:
    call.facts.append(Entered(Stage.EXTERNAL, at, number))
    return Next(call.dial_external(number, EXTERNAL_RING_SECONDS), Ringing(Stage.EXTERNAL, None, 0, ()))
