"""What users' phones see of a call: the caller's identity (with a name prefix), the reason of the
hangup of a phone that lost the race, busy phones (by Asterisk's device state), ring times and the
personal line's own mailbox, and the line's language."""

from __future__ import annotations

from dataclasses import replace

from callkeeper.ari.events import parse_event
from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.service.translate import to_inputs
from tests.unit.engine_harness import Harness, line, make_config


def harness(route: str = "ring_group:sales", **kwargs: object) -> Harness:
    return Harness(make_config(main=line(route, **kwargs)))


def busy(h: Harness, user: str, is_busy: bool = True) -> list[act.Action]:
    return h.feed(ev.DeviceStateChanged(f"Local/{user}", is_busy, True, h.now))


def test_phones_show_the_caller_with_the_groups_or_lines_prefix() -> None:
    h = harness(cid_name_prefix="Main: ")
    h.feed(ev.CallArrived("c1", "+14155550111", "Carl Caller", "+12125550100", h.now))
    assert {(d.caller_number, d.caller_name) for d in h.dialed_legs()} == {
        ("+14155550111", "Main: Carl Caller")
    }

    config = make_config(main=line("ring_group:sales", cid_name_prefix="Main: "))
    sales = replace(config.ring_groups["sales"], cid_name_prefix="Sales: ")
    h = Harness(replace(config, ring_groups={**config.ring_groups, "sales": sales}))
    h.arrive()  # no name: the prefix goes before the number
    assert {d.caller_name for d in h.dialed_legs()} == {"Sales: +14155550111"}

    h = harness()
    h.feed(ev.CallArrived("c1", "+14155550111", "Carl Caller", "+12125550100", h.now))
    assert {d.caller_name for d in h.dialed_legs()} == {"Carl Caller"}


def test_phones_that_lost_the_race_are_hung_up_as_answered_elsewhere() -> None:
    h = harness()
    h.arrive()
    out = h.feed(ev.LegProgress(h.leg("alice"), "ANSWER", h.now))
    hangups = [a for a in out if isinstance(a, act.Hangup)]
    assert [(a.channel_id, a.reason) for a in hangups] == [(h.leg("bob"), "answered_elsewhere")]


def test_a_caller_who_gives_up_hangs_the_phones_up_normally() -> None:
    h = harness()
    h.arrive()
    out = h.hangup("c1")
    assert {a.reason for a in out if isinstance(a, act.Hangup)} == {"normal"}


def test_busy_phones_are_not_rung_unless_they_ring_when_busy() -> None:
    h = harness()
    busy(h, "alice")
    h.arrive()
    assert [d.endpoint for d in h.dialed_legs()] == ["Local/bob@user-answer"]
    assert h.engine.presence("alice") == "busy"

    config = make_config(main=line("ring_group:sales"))
    alice = replace(config.users["alice"], ring_when_busy=True)
    h = Harness(replace(config, users={**config.users, "alice": alice}))
    busy(h, "alice")
    h.arrive()
    assert {d.endpoint for d in h.dialed_legs()} == {"Local/alice@user-answer", "Local/bob@user-answer"}

    sales = replace(config.ring_groups["sales"], ring_when_busy=True)
    h = Harness(replace(config, ring_groups={**config.ring_groups, "sales": sales}))
    busy(h, "alice")
    busy(h, "bob")
    h.arrive()
    assert len(h.dialed_legs()) == 2


def test_all_phones_busy_is_fast_forward_and_a_freed_phone_takes_the_queue() -> None:
    h = harness()
    for user in ("alice", "bob", "carol"):
        busy(h, user)
    h.arrive()
    assert not h.dialed_legs()[:-1]  # only the voicemail leg: fast forward
    assert [s.detail for s in h.records["c1"].steps][:2] == ["sales", "no_agents"]

    h = harness("ring_group:queued")
    busy(h, "alice")
    busy(h, "bob")
    h.arrive()
    assert not h.dialed_legs()
    out = busy(h, "bob", is_busy=False)
    assert [d.endpoint for d in out if isinstance(d, act.DialLeg)] == ["Local/bob@user-answer"]


def test_a_phone_offline_by_its_device_state_is_not_rung_and_takes_the_queue_when_back() -> None:
    h = harness("ring_group:queued")
    h.feed(ev.DeviceStateChanged("Local/alice", False, False, h.now))
    h.feed(ev.DeviceStateChanged("Local/bob", False, False, h.now))
    h.arrive()
    assert not h.dialed_legs()
    assert h.engine.presence("bob") == "offline"
    out = h.feed(ev.DeviceStateChanged("Local/bob", False, True, h.now))
    assert [d.endpoint for d in out if isinstance(d, act.DialLeg)] == ["Local/bob@user-answer"]


def test_device_states_say_busy_and_offline() -> None:
    def translated(state: str) -> tuple[bool, bool]:
        (item,) = to_inputs(
            parse_event(
                {
                    "type": "DeviceStateChanged",
                    "application": "callkeeper",
                    "timestamp": "2026-12-05T01:00:00.000+0000",
                    "device_state": {"name": "PJSIP/alice", "state": state},
                }
            )
        )
        assert isinstance(item, ev.DeviceStateChanged)
        return item.busy, item.online

    assert translated("NOT_INUSE") == (False, True)
    assert translated("RINGINUSE") == (True, True)
    assert translated("ONHOLD") == (True, True)
    assert translated("UNAVAILABLE") == (False, False)
    assert translated("INVALID") == (False, False)
    assert translated("UNKNOWN") == (False, True)


def test_personal_line_rings_the_users_time_and_misses_to_their_mailbox() -> None:
    config = make_config(main=line("user:bob"))
    bob = replace(config.users["bob"], ring_seconds=7, mailbox="2002@default")
    h = Harness(replace(config, users={**config.users, "bob": bob}))
    h.arrive()
    assert h.dialed_legs()[-1].timeout_seconds == 7
    h.advance(7)
    voicemail = h.dialed_legs()[-1]
    assert voicemail.variables["CALLKEEPER_MAILBOX"] == "2002@default"

    h = harness("ring_group:sales")  # a group's missed call goes to the line's mailbox
    h.arrive()
    h.advance(40)
    assert h.dialed_legs()[-1].variables["CALLKEEPER_MAILBOX"] == "main@default"


def test_outside_numbers_ring_the_configured_time() -> None:
    config = make_config(main=line("external:+14155550123"))
    h = Harness(replace(config, external_ring_seconds=45))
    h.arrive()
    assert h.dialed_legs()[-1].timeout_seconds == 45


def test_the_lines_language_is_set_before_anything_plays() -> None:
    h = harness(language="fr", welcome="sound:hello-world")
    h.arrive()
    kinds = [type(a) for a in h.actions if isinstance(a, act.SetVariable | act.Play | act.Answer)]
    assert kinds[0] is act.SetVariable
    (language,) = [a for a in h.actions if isinstance(a, act.SetVariable)]
    assert (language.channel_id, language.name, language.value) == ("c1", "CHANNEL(language)", "fr")


def test_do_not_disturb_is_not_rung_and_a_queue_waits_for_its_end() -> None:
    h = harness()
    h.feed(ev.PresenceChanged("alice", False, h.now, dnd=True))
    assert h.engine.presence("alice") == "dnd"
    h.arrive()
    assert [d.endpoint for d in h.dialed_legs()] == ["Local/bob@user-answer"]

    h = harness("ring_group:queued")
    h.feed(ev.PresenceChanged("alice", False, h.now, dnd=True))
    h.feed(ev.PresenceChanged("bob", True, h.now))
    h.arrive()
    assert not h.dialed_legs()
    out = h.feed(ev.PresenceChanged("alice", False, h.now))
    assert [d.endpoint for d in out if isinstance(d, act.DialLeg)] == ["Local/alice@user-answer"]
