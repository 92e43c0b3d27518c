"""Hand-off to the PBX's dialplan (`dialplan:CONTEXT,EXTEN[,PRIORITY]`): the caller continues there,
the verdict comes from what is seen of the channel afterwards."""

from __future__ import annotations

import pytest

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from tests.unit.engine_harness import Harness, line, make_config


def handed_off(route: str = "dialplan:ext-queues,400,1") -> Harness:
    h = Harness(make_config(main=line(route)))
    h.arrive()
    h.feed(ev.LeftApp("c1", h.now))  # the continue: out of our app, still ours to watch
    return h


def ended(h: Harness, queue: str = "", abandoned: bool = False, dial: str = "", vm: str = "") -> None:
    h.hangup("c1")
    h.feed(ev.HandoffEnded("c1", queue, abandoned, dial, vm, h.now))


def test_the_caller_continues_in_the_dialplan() -> None:
    h = handed_off()
    (handoff,) = [a for a in h.actions if isinstance(a, act.HandOff)]
    assert (handoff.channel_id, handoff.context, handoff.extension, handoff.priority) == (
        "c1",
        "ext-queues",
        "400",
        1,
    )
    assert "c1" in h.engine.calls  # leaving our app is not the caller leaving
    assert handed_off("dialplan:from-internal,200").dialed_legs() == []


def test_answered_once_the_dialplan_puts_the_caller_through() -> None:
    h = handed_off()
    h.feed(ev.CallerConnected("c1", "Local/bob@user-answer", h.now))
    ended(h)  # a queue call that was answered leaves no QUEUESTATUS
    assert h.verdict() == ("answered", "answered")
    assert h.records["c1"].answered_by == "bob"


@pytest.mark.parametrize(
    ("report", "verdict"),
    [
        ({"queue": "TIMEOUT"}, ("missed", "queue_max_wait")),
        ({"queue": "JOINEMPTY"}, ("missed", "no_agents_available")),
        ({"abandoned": True}, ("missed", "queue_caller_hangup")),
        ({"dial": "CANCEL"}, ("missed", "ring_group_caller_hangup")),
        ({"dial": "NOANSWER"}, ("missed", "ring_group_no_answer")),
        ({"dial": "CHANUNAVAIL"}, ("missed", "no_agents_available")),
        ({"vm": "SUCCESS"}, ("missed", "voicemail")),
        ({"queue": "TIMEOUT", "vm": "SUCCESS"}, ("missed", "queue_max_wait")),
        ({}, ("abandoned", "welcome_hangup")),
    ],
)
def test_otherwise_the_dialplans_statuses_decide(report: dict[str, object], verdict: tuple[str, str]) -> None:
    h = handed_off()
    ended(h, **report)  # type: ignore[arg-type]
    assert h.verdict() == verdict
    assert not h.engine.calls


def test_without_a_report_the_caller_left_during_the_dialplan() -> None:
    h = handed_off()
    h.hangup("c1")
    h.advance(5)
    assert h.verdict() == ("abandoned", "welcome_hangup")


def test_a_failed_hand_off_gets_the_failure_treatment() -> None:
    h = Harness(make_config(main=line("dialplan:ext-queues,400")))
    h.arrive()
    handoff = next(a for a in h.actions if isinstance(a, act.HandOff))
    out = h.feed(ev.ActionFailed("c1", handoff, "c1", False, "boom", h.now))
    assert any(isinstance(a, act.Hangup) and a.channel_id == "c1" for a in out)
    assert h.verdict() == ("missed", "failure")
