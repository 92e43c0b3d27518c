"""A daemon that died or stops: calls adopted from their stored journey, records of calls nobody
saw end, calls cut off with Asterisk, and the calls left when the shutdown grace runs out."""

from __future__ import annotations

from dataclasses import replace

from callkeeper.ari.events import parse_event
from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.records import CallRecord
from callkeeper.service.translate import to_inputs
from tests.unit.engine_harness import Harness, line, make_config


def harness(route: str = "ring_group:sales", **kwargs: object) -> Harness:
    return Harness(make_config(main=line(route, **kwargs)))


def died_in(h: Harness, call_id: str = "c1") -> CallRecord:
    """The last record the daemon of `h` stored before it died."""
    return h.records[call_id]


def restarted(h: Harness) -> Harness:
    """A new daemon on the same store, at the dead one's time."""
    return Harness(h.config, now=h.now)


def adopt(
    h: Harness,
    record: CallRecord | None,
    *legs: ev.AdoptedLeg,
    bridge: str | None = None,
    answered: bool = True,
) -> list[act.Action]:
    return h.feed(
        ev.CallAdopted("c1", "+14155550111", "", "+12125550100", answered, bridge, legs, record, h.now)
    )


def steps(h: Harness, call_id: str = "c1") -> list[str]:
    return [step.stage for step in h.records[call_id].steps]


def test_talking_call_stays_connected_and_keeps_its_journey() -> None:
    old = harness()
    old.arrive()
    old.answer("alice")
    leg = old.leg("alice")
    record = died_in(old)
    assert record.answered_by == "alice" and not record.ended

    h = restarted(old)
    out = adopt(
        h,
        record,
        ev.AdoptedLeg(leg, "Local/alice@user-answer-0001;1", True, "callkeeper-c1"),
        bridge="callkeeper-c1",
    )

    assert not [a for a in out if isinstance(a, act.Hangup | act.BridgeChannels | act.DialLeg)]
    assert h.engine.board.talking == {"alice": "c1"}
    h.advance(30)
    h.hangup(leg)
    assert h.verdict() == ("answered", "answered")
    assert steps(h) == ["ring_group", "answered", "adopted"]
    assert h.records["c1"].end_observed and h.records["c1"].started_at == record.started_at
    assert any(isinstance(a, act.DestroyBridge) for a in h.actions)


def test_ringing_call_rings_again_with_new_legs() -> None:
    old = harness()
    old.arrive()
    legs = [d.leg_id for d in old.dialed_legs()]
    record = died_in(old)

    h = restarted(old)
    out = adopt(h, record, *(ev.AdoptedLeg(leg, f"Local/{leg}", False, None) for leg in legs))

    assert {a.channel_id for a in out if isinstance(a, act.Hangup)} == set(legs)
    again = [d.leg_id for d in h.dialed_legs()]
    assert len(again) == 2 and not set(again) & set(legs)
    h.hangup("c1")
    assert h.verdict() == ("missed", "ring_group_caller_hangup")
    assert steps(h) == ["ring_group", "adopted", "ring_group", "caller_hangup"]


def test_user_who_answered_while_no_daemon_ran_is_connected() -> None:
    old = harness()
    old.arrive()
    bob = old.leg("bob")
    record = died_in(old)

    h = restarted(old)
    out = adopt(h, record, ev.AdoptedLeg(bob, "Local/bob@user-answer-00000007;1", True, None))

    assert act.BridgeChannels("c1", "callkeeper-c1", ("c1", bob)) in out
    assert act.StopRing("c1", "c1") in out
    h.hangup("c1")
    assert h.verdict() == ("answered", "answered")
    assert h.records["c1"].answered_by == "bob"


def test_voicemail_goes_on_and_its_result_is_kept() -> None:
    old = harness("voicemail")
    old.arrive()
    vm = old.dialed_legs()[-1].leg_id
    record = died_in(old)

    h = restarted(old)
    out = adopt(
        h,
        record,
        ev.AdoptedLeg(vm, "Local/s@callkeeper-voicemail-0001;1", True, "callkeeper-c1"),
        bridge="callkeeper-c1",
    )

    assert not [a for a in out if isinstance(a, act.Hangup | act.DialLeg)]
    h.feed(ev.VoicemailFinished(f"{vm}-far", "SUCCESS", 7, h.now))
    h.hangup(vm)
    assert h.verdict() == ("missed", "voicemail")
    voicemail = h.records["c1"].voicemail
    assert voicemail is not None and voicemail.left and voicemail.seconds == 7


def test_welcome_audio_is_stopped_and_the_route_follows() -> None:
    old = harness(welcome="sound:long")
    old.arrive()
    playing = next(a for a in old.actions if isinstance(a, act.Play)).playback_id
    record = died_in(old)
    assert record.extra == {"playback": playing}

    h = restarted(old)
    out = adopt(h, record)

    assert out.index(act.StopPlayback("c1", playing)) < out.index(act.Ring("c1", "c1"))
    assert not any(isinstance(a, act.Answer) for a in out)
    assert steps(h) == ["welcome", "adopted", "ring_group"]
    assert h.records["c1"].extra == {}


def test_ivr_menu_starts_over() -> None:
    old = harness("ivr:menu")
    old.arrive()
    old.playback_done()
    record = died_in(old)
    assert record.extra == {}  # the prompt had ended: the record says so

    h = restarted(old)
    adopt(h, record)
    h.playback_done()
    h.feed(ev.DtmfReceived("c1", "9", h.now))
    assert steps(h)[:4] == ["ivr", "adopted", "ivr", "dtmf"]


def test_talking_call_whose_user_left_meanwhile_is_ended() -> None:
    old = harness()
    old.arrive()
    old.answer("alice")
    record = died_in(old)

    h = restarted(old)
    out = adopt(h, record, bridge="callkeeper-c1")

    assert act.Hangup("c1", "c1") in out and act.DestroyBridge("c1", "callkeeper-c1") in out
    assert h.verdict() == ("answered", "answered")
    assert not h.engine.calls


def test_caller_without_a_record_is_routed_and_left_unanswered_while_it_rings() -> None:
    h = Harness(make_config())
    out = adopt(h, None, answered=False)

    assert not any(isinstance(a, act.Answer) for a in out)
    assert steps(h) == ["adopted", "ring_group"]
    assert h.records["c1"].steps[0].detail == "arrived"


def test_records_of_calls_nobody_saw_end() -> None:
    cases = [
        ("ring_group:sales", None, ("missed", "ring_group_caller_hangup")),
        ("ring_group:fishing_noq", None, ("abandoned", "fishing_hangup")),
        ("ivr:menu", "4", ("abandoned", "ivr_hangup_after_input")),
        ("voicemail", None, ("missed", "voicemail")),
    ]
    for route, digit, verdict in cases:
        old = harness(route)
        old.arrive()
        if digit:
            old.feed(ev.DtmfReceived("c1", digit, old.now))
        h = restarted(old)
        h.advance(60)
        saved = h.engine.close_unobserved(died_in(old), h.now)
        record = next(a.record for a in saved if isinstance(a, act.SaveRecord))
        assert (record.outcome, record.reason) == verdict, route
        assert record.ended_at == h.now and not record.end_observed
        assert record.steps == died_in(old).steps


def test_call_cut_off_with_asterisk_is_closed_as_not_observed() -> None:
    h = harness()
    h.arrive("c1")
    h.answer("alice")
    h.arrive("c2")
    for call_id in ("c1", "c2"):  # Asterisk takes the legs down first
        for leg in list(h.engine.calls[call_id].legs):
            h.feed(ev.ChannelHungUp(leg, h.now, observed=False))
        h.feed(ev.ChannelHungUp(call_id, h.now, observed=False))

    assert h.verdict("c1") == ("answered", "answered")
    assert h.verdict("c2") == ("missed", "ring_group_caller_hangup")
    assert not h.records["c1"].end_observed and not h.records["c2"].end_observed
    assert not [d for d in h.dialed_legs() if "voicemail" in d.endpoint]


def test_asterisk_shutting_down_is_no_hangup_anyone_observed() -> None:
    channel = {
        "id": "c1",
        "name": "PJSIP/trunk-00000001",
        "state": "Up",
        "caller": {"name": "", "number": "+14155550111"},
        "connected": {"name": "", "number": ""},
        "dialplan": {"context": "x", "exten": "s", "priority": 1, "app_name": "Stasis", "app_data": ""},
        "creationtime": "2026-11-25T15:00:00.000+0000",
        "language": "en",
    }
    common = {"type": "ChannelHangupRequest", "application": "callkeeper", "channel": channel}
    at = {"timestamp": "2026-11-25T15:00:01.000+0000"}

    shutdown = to_inputs(parse_event({**common, **at, "cause": 4, "soft": True}))
    asked = to_inputs(parse_event({**common, **at, "cause": 32, "soft": True}))
    caller = to_inputs(parse_event({**common, **at, "cause": 16}))

    assert [i.observed for i in (*shutdown, *asked, *caller) if isinstance(i, ev.ChannelHungUp)] == [
        False,
        True,
        True,
    ]


def test_calls_left_at_the_end_of_the_grace_are_ended() -> None:
    h = harness()
    h.arrive("c1")
    h.answer("alice")
    h.arrive("c2")

    legs = {leg for call in h.engine.calls.values() for leg in call.legs}
    out = h.engine.shut_down(h.now)
    h.actions += out
    finals = {a.record.id: a.record for a in out if isinstance(a, act.SaveRecord) and a.final}

    assert act.Hangup("c1", "c1") in out and act.DestroyBridge("c1", "callkeeper-c1") in out
    assert act.Hangup("c2", "c2", "unallocated") in out  # the failure treatment
    assert {a.channel_id for a in out if isinstance(a, act.Hangup)} == {"c1", "c2", *legs}
    assert (finals["c1"].outcome, finals["c2"].reason) == ("answered", "failure")
    assert not h.engine.calls and not any(isinstance(a, act.DialLeg) for a in out)


def test_calls_refused_while_stopping_leave_no_worker_behind() -> None:
    h = harness()
    h.feed(ev.StopAccepting(h.now))
    out = h.feed(ev.CallArrived("c9", "+14155550111", "", "+12125550100", h.now))
    assert isinstance(out[1], act.ContinueInDialplan) and out[-1] == act.Forget("c9")


def test_new_ids_after_adoption_do_not_meet_old_ones() -> None:
    old = harness()
    old.arrive()
    record = replace(died_in(old), extra={"playback": "c1-position-41"})
    h = restarted(old)
    adopt(h, record, ev.AdoptedLeg("c1-leg-7", "Local/x", False, None))
    assert all(int(d.leg_id.rsplit("-", 1)[1]) > 41 for d in h.dialed_legs())
