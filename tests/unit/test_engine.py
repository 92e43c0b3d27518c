"""The call logic over whole journeys: every row of the verdict table, without Asterisk."""

from __future__ import annotations

from datetime import time

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.config.model import BusinessHours, MissedCalls, TimeRange
from tests.unit.engine_harness import T0, Harness, dest, line, make_config


def harness(route: str = "ring_group:sales", **kwargs: object) -> Harness:
    return Harness(make_config(main=line(route, **kwargs)))


def test_unknown_number_is_hung_up_and_recorded_ignored() -> None:
    h = harness()
    h.arrive(dialed="+19999999999")
    assert any(isinstance(a, act.Hangup) for a in h.actions)
    assert h.verdict() == ("ignored", "unknown_number")
    assert not h.engine.calls


def test_welcome_hangup_is_abandoned() -> None:
    h = harness(welcome="sound:hello-world")
    h.arrive()
    assert isinstance(h.actions[1], act.Answer)
    h.hangup("c1")
    assert h.verdict() == ("abandoned", "welcome_hangup")


def test_ivr_hangup_before_and_after_input() -> None:
    h = harness("ivr:menu")
    h.arrive()
    h.hangup("c1")
    assert h.verdict() == ("abandoned", "ivr_hangup")

    h = harness("ivr:menu")
    h.arrive()
    h.feed(ev.DtmfReceived("c1", "7", h.now))  # invalid digit: re-prompted
    h.hangup("c1")
    assert h.verdict() == ("abandoned", "ivr_hangup_after_input")


def test_ring_group_answered() -> None:
    h = harness("ivr:menu")
    h.arrive()
    h.playback_done()
    h.feed(ev.DtmfReceived("c1", "1", h.now))
    assert {d.endpoint for d in h.dialed_legs()} == {"Local/alice@user-answer", "Local/bob@user-answer"}
    h.advance(3)
    h.answer("bob")
    bridge = [a for a in h.actions if isinstance(a, act.BridgeChannels)][-1]
    assert bridge.channel_ids == ("c1", h.leg("bob"))
    assert h.engine.board.talking == {"bob": "c1"}
    h.advance(30)
    h.hangup("c1")
    assert h.verdict() == ("answered", "answered")
    assert h.records["c1"].answered_by == "bob"
    assert not h.engine.board.talking


def test_ring_group_caller_hangup_and_fishing() -> None:
    h = harness()
    h.arrive()
    h.advance(5)
    h.hangup("c1")
    assert h.verdict() == ("missed", "ring_group_caller_hangup")
    assert {a.channel_id for a in h.actions if isinstance(a, act.Hangup)} == {
        d.leg_id for d in h.dialed_legs()
    }

    h = harness("ring_group:fishing_noq")
    h.arrive()
    h.hangup("c1")
    assert h.verdict() == ("abandoned", "fishing_hangup")


def test_layers_then_rang_out_goes_to_voicemail() -> None:
    h = harness()
    h.arrive()
    h.advance(20)  # layer 1 rang out
    assert h.dialed_legs()[-1].endpoint == "Local/carol@user-answer"
    h.advance(20)  # layer 2 rang out
    vm = h.dialed_legs()[-1]
    assert vm.endpoint == "Local/s@callkeeper-voicemail"
    assert vm.variables["CALLKEEPER_MAILBOX"] == "main@default"
    h.feed(ev.LegProgress(vm.leg_id, "ANSWER", h.now))
    h.advance(10)
    h.hangup("c1")
    assert "c1" in h.engine.calls  # waits for the voicemail result
    h.feed(ev.VoicemailFinished(f"{vm.leg_id}-far", "SUCCESS", 8, h.now))
    assert h.verdict() == ("missed", "ring_group_no_answer")
    assert h.records["c1"].voicemail is not None and h.records["c1"].voicemail.left


def test_busy_members_fall_through_fast() -> None:
    h = harness()
    h.arrive()
    for leg in h.dialed_legs():
        h.feed(ev.LegProgress(leg.leg_id, "BUSY", h.now))
    assert h.dialed_legs()[-1].endpoint == "Local/carol@user-answer"


def test_fast_forward_no_agents() -> None:
    h = harness()
    h.engine.board.away.update({"alice", "bob", "carol"})
    h.arrive()
    assert h.dialed_legs()[-1].endpoint == "Local/s@callkeeper-voicemail"
    h.hangup("c1")
    h.advance(5)  # no voicemail result: the wait gives up
    assert h.verdict() == ("missed", "no_agents_available")


def test_sequential_and_round_robin_order() -> None:
    h = harness("ring_group:seq")
    h.arrive()
    h.advance(10)
    h.advance(10)
    assert [d.endpoint.split("@")[0] for d in h.dialed_legs()] == ["Local/alice", "Local/bob", "Local/carol"]

    h = harness("ring_group:rr")
    h.arrive("c1")
    h.advance(1)
    h.answer("alice")
    h.hangup("c1")
    h.arrive("c2")
    assert h.dialed_legs()[-1].endpoint.startswith("Local/bob")


def test_queue_waits_then_offers_when_user_frees() -> None:
    h = harness("ring_group:queued")
    h.arrive("c1")
    h.answer("alice")
    h.arrive("c2")
    h.answer("bob")
    h.arrive("c3")  # nobody free: queued with music on hold
    assert any(isinstance(a, act.StartMoh) and a.call_id == "c3" for a in h.actions)
    h.arrive("c4")
    assert h.engine.board.queues["queued"] == ["c3", "c4"]
    h.advance(5)
    h.hangup("c1")  # alice is free again: the longest-waiting caller is offered to her
    offer = h.dialed_legs()[-1]
    assert offer.call_id == "c3" and "alice" in offer.endpoint
    h.bridge(h.feed(ev.LegProgress(offer.leg_id, "ANSWER", h.now)))
    h.hangup("c3")
    assert h.verdict("c3") == ("answered", "answered")
    h.advance(60)
    h.hangup("c4")
    h.advance(5)
    assert h.verdict("c4") == ("missed", "queue_max_wait")


def test_queue_caller_hangup() -> None:
    h = harness("ring_group:queued")
    h.engine.board.away.update({"alice", "bob"})
    h.arrive()
    h.advance(5)
    h.hangup("c1")
    assert h.verdict() == ("missed", "queue_caller_hangup")
    assert h.engine.board.queues["queued"] == []


def test_fishing_mode_offers_busy_users() -> None:
    h = harness("ring_group:fishing")
    h.arrive("c1")
    h.answer("alice")
    h.arrive("c2")
    offers = [d for d in h.dialed_legs() if d.call_id == "c2"]
    assert offers and "alice" in offers[0].endpoint
    h.hangup("c2")
    assert h.verdict("c2") == ("abandoned", "fishing_hangup")


def test_personal_line_backup_then_missed() -> None:
    h = harness("user:alice")
    h.arrive()
    h.advance(20)
    assert h.dialed_legs()[-1].endpoint == "PJSIP/+16465550111@trunk"
    h.hangup("c1")
    assert h.verdict() == ("missed", "personal_line_caller_hangup")

    h = harness("user:bob", missed_calls=MissedCalls(action=dest("external:+14155550123")))
    h.arrive()
    h.advance(20)
    assert h.dialed_legs()[-1].endpoint == "PJSIP/+14155550123@trunk"
    h.answer("+14155550123")
    h.hangup("c1")
    assert h.verdict() == ("answered", "answered")
    assert h.records["c1"].answered_by == "external:+14155550123"


def test_after_hours_voicemail_and_dead_end() -> None:
    closed = BusinessHours({0: (TimeRange(time(9), time(10)),)})
    h = harness(business_hours=closed)
    h.arrive()
    assert h.dialed_legs()[-1].endpoint == "Local/s@callkeeper-voicemail"
    h.hangup("c1")
    h.advance(5)
    assert h.verdict() == ("missed", "after_hours")

    h = harness("dead_end")
    h.arrive()
    assert h.verdict() == ("ignored", "dead_end")


def test_short_abandon_keeps_verdict() -> None:
    h = harness(welcome="sound:hello-world", short_abandon_seconds=5)
    h.arrive()
    h.advance(2)
    h.hangup("c1")
    record = h.records["c1"]
    assert (record.outcome, record.reason, record.short) == ("abandoned", "welcome_hangup", True)


def test_press_1_declined_stays_missed() -> None:
    h = harness("voicemail", missed_calls=MissedCalls(press_1_for_voicemail=True))
    h.arrive()
    h.playback_done()
    h.advance(6)
    assert h.verdict() == ("missed", "voicemail")
    assert not any(d.endpoint.endswith("callkeeper-voicemail") for d in h.dialed_legs())


def test_timers_from_an_old_stage_are_ignored() -> None:
    h = harness("ivr:menu")
    h.arrive()
    h.playback_done()
    h.feed(ev.DtmfReceived("c1", "1", h.now))
    before = len(h.actions)
    h.feed(ev.TimerFired("c1", Timer.IVR, 1, h.now))
    assert len(h.actions) == before


def test_failure_falls_back_to_treatment() -> None:
    h = harness()
    h.arrive()
    h.feed(ev.ActionFailed("c1", act.Answer("c1", "c1"), "c1", False, "boom", T0))
    assert any(isinstance(a, act.Hangup) and a.channel_id == "c1" for a in h.actions)
    assert h.verdict()[0] == "missed"
    assert not h.engine.calls


def dial_out(h: Harness, user: str | None = "alice", ring_group: str | None = None) -> None:
    h.feed(ev.DialerRequested("out1", "main", "+14155550123", user, ring_group, h.now))


def test_dialer_connects_user_then_contact() -> None:
    h = harness()
    dial_out(h, None, "sales")
    user_leg = h.dialed_legs()[-1]
    assert user_leg.leg_id == "out1-user" and "alice" in user_leg.endpoint
    h.feed(ev.LegProgress("out1-user", "ANSWER", h.now))
    contact = h.dialed_legs()[-1]
    assert contact.endpoint == "PJSIP/+14155550123@trunk"
    h.answer("+14155550123")
    assert any(
        isinstance(a, act.BridgeChannels) and a.channel_ids == ("out1-user", contact.leg_id)
        for a in h.actions
    )
    h.hangup(contact.leg_id)
    record = h.records["out1"]
    assert (record.direction, record.outcome, record.answered_by) == ("outbound", "answered", "alice")


def test_dialer_contact_no_answer_is_abandoned() -> None:
    h = harness()
    dial_out(h)
    h.feed(ev.LegProgress("out1-user", "ANSWER", h.now))
    contact = h.dialed_legs()[-1]
    h.feed(ev.LegProgress(contact.leg_id, "BUSY", h.now))
    assert h.verdict("out1") == ("abandoned", "progressive_no_answer")
    assert any(isinstance(a, act.Hangup) and a.channel_id == "out1-user" for a in h.actions)


def test_dialer_without_a_free_user_calls_nobody() -> None:
    h = harness()
    h.engine.board.away.add("alice")
    dial_out(h)
    assert not h.dialed_legs()
    assert h.verdict("out1") == ("ignored", "progressive_user_no_answer")
    h = harness()
    dial_out(h)
    h.advance(25)
    assert h.verdict("out1") == ("ignored", "progressive_user_no_answer")
