"""A user's personal line (their phone, then their backup number) and outside numbers."""

from __future__ import annotations

from datetime import datetime

from callkeeper.calls.actions import Timer
from callkeeper.calls.call import AttemptOver, Call, Next, Ringing
from callkeeper.calls.journey import Entered, Stage
from callkeeper.calls.switchboard import Switchboard


def start(call: Call, board: Switchboard, user: str, at: datetime) -> Next:
    call.facts.append(Entered(Stage.PERSONAL_LINE, at, user))
    call.personal_line_of = user
    found = call.config.users[user]
    ringing = Ringing(Stage.PERSONAL_LINE, None, 0, (found.backup_number,) if found.backup_number else ())
    if not board.available(call.config, user):
        return Next([], ringing, AttemptOver(ringing))
    out = call.dial_user(user, found.ring_seconds)
    out += [*call.ringback(), call.timer(Timer.RING, found.ring_seconds)]
    return Next(out, ringing)


def ring_backup(call: Call, number: str, at: datetime) -> Next:
    call.facts.append(Entered(Stage.PERSONAL_LINE, at, f"backup {number}"))
    owner = call.config.users.get(call.personal_line_of or "")
    ring_seconds = owner.ring_seconds if owner else call.config.external_ring_seconds
    return Next(call.dial_external(number, ring_seconds), Ringing(Stage.PERSONAL_LINE, None, 0, ()))


def start_external(call: Call, number: str, at: datetime) -> Next:
    call.facts.append(Entered(Stage.EXTERNAL, at, number))
    ringing = Ringing(Stage.EXTERNAL, None, 0, ())
    return Next(call.dial_external(number, call.config.external_ring_seconds), ringing)
