"""A progressive-dialer call whose daemon died is adopted by the next one like an inbound call: the
user's phone still ringing, the contact ringing, or the two talking go on; what ended meanwhile ends
the call with the verdict it earned (not closed as unobserved)."""

from __future__ import annotations

from callkeeper.ari.events import Bridge
from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from callkeeper.calls.engine import Following
from callkeeper.records import CallRecord
from callkeeper.service import reconcile
from tests.unit.engine_harness import Harness, line, make_config
from tests.unit.test_reconcile_plan import APP, NOW, channel

BRIDGE = "callkeeper-out1"
CONTACT = "+14155550123"


def harness() -> Harness:
    return Harness(make_config(main=line("ring_group:sales")))


def before_the_crash(contact_dialed: bool, contact_answered: bool = False) -> tuple[CallRecord, str]:
    """The dialer call's last stored record on the daemon that died, and its contact leg's id."""
    h = harness()
    h.feed(ev.DialerRequested("out1", "main", CONTACT, "alice", None, h.now))
    if not contact_dialed:
        return h.records["out1"], ""
    h.feed(ev.LegProgress("out1-user", "ANSWER", h.now))
    contact = h.dialed_legs()[-1].leg_id
    if contact_answered:
        h.answer(CONTACT)
    return h.records["out1"], contact


def leg(channel_id: str, up: bool, bridge: str | None = None) -> ev.AdoptedLeg:
    return ev.AdoptedLeg(channel_id, f"PJSIP/{channel_id}-0001", up, bridge)


def test_the_users_phone_still_ringing_rings_on() -> None:
    record, _ = before_the_crash(contact_dialed=False)
    h = harness()
    h.feed(ev.DialerCallAdopted("out1", leg("out1-user", up=False), (), record, h.now))
    assert ("out1", Timer.RING) in h.timers
    assert h.engine.board.offered == {"alice": "out1"}
    h.feed(ev.LegProgress("out1-user", "ANSWER", h.now))
    assert h.dialed_legs()[-1].endpoint == f"PJSIP/{CONTACT}@trunk"


def test_a_ringing_contact_who_answers_is_put_through_and_the_call_is_answered() -> None:
    record, contact = before_the_crash(contact_dialed=True)
    h = harness()
    h.feed(ev.DialerCallAdopted("out1", leg("out1-user", up=True), (leg(contact, up=False),), record, h.now))
    assert h.engine.board.talking == {"alice": "out1"}
    h.bridge(h.feed(ev.LegProgress(contact, "ANSWER", h.now)))
    h.hangup(contact)
    assert h.verdict("out1") == ("answered", "answered")
    assert h.records["out1"].end_observed
    assert [s.stage for s in h.records["out1"].steps] == [
        "dialer_user",
        "dialer_contact",
        "adopted",
        "answered",
    ]


def test_a_contact_who_rang_out_meanwhile_is_recorded_not_answered() -> None:
    record, _ = before_the_crash(contact_dialed=True)
    h = harness()
    h.feed(ev.DialerCallAdopted("out1", leg("out1-user", up=True), (), record, h.now))
    assert any(isinstance(a, act.Hangup) and a.channel_id == "out1-user" for a in h.actions)
    h.hangup("out1-user")
    assert h.verdict("out1") == ("abandoned", "progressive_no_answer")


def test_a_user_and_contact_talking_talk_on() -> None:
    record, contact = before_the_crash(contact_dialed=True, contact_answered=True)
    h = harness()
    adopted = ev.DialerCallAdopted(
        "out1",
        leg("out1-user", up=True, bridge=BRIDGE),
        (leg(contact, up=True, bridge=BRIDGE),),
        record,
        h.now,
    )
    h.feed(adopted)
    assert not any(isinstance(a, act.Hangup | act.BridgeChannels) for a in h.actions)
    h.hangup(contact)
    assert h.verdict("out1") == ("answered", "answered")
    assert h.records["out1"].end_observed


def test_the_reconcile_plan_adopts_an_outbound_call_by_its_users_channel() -> None:
    record, contact = before_the_crash(contact_dialed=True, contact_answered=True)
    channels = [channel("out1-user", f"{APP},leg,out1"), channel(contact, f"{APP},leg,out1")]
    bridges = [Bridge(BRIDGE, "simple_bridge", "mixing", BRIDGE, ("out1-user", contact))]
    plan = reconcile.adoptions(
        APP,
        Following((), frozenset(), frozenset(), frozenset()),
        channels,
        bridges,
        open_records=[record],
        now=NOW,
    )
    assert plan.orphans == []
    assert plan.records == {}
    [adopted] = plan.adopt
    assert isinstance(adopted, ev.DialerCallAdopted)
    assert (adopted.call_id, adopted.user.channel_id, adopted.user.bridge) == ("out1", "out1-user", BRIDGE)
    assert [(c.channel_id, c.up) for c in adopted.legs] == [(contact, True)]
