"""What a caller experienced decides, not what the daemon decided: answered only once the caller and
the user share the bridge; ring time, queue wait and hangup ordered by Asterisk's clock; the caller
answered only when they must hear us."""

from __future__ import annotations

from datetime import timedelta

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.calls.actions import Timer
from tests.unit.engine_harness import Harness, line, make_config

# The failed requests of call c1 (which of its requests does not change how the engine reacts).
BRIDGE = act.BridgeChannels("c1", "callkeeper-c1", ("c1",))
PLAY = act.Play("c1", "c1", ("sound:hello-world",), "c1-welcome-1")


def harness(route: str = "ring_group:sales", **kwargs: object) -> Harness:
    return Harness(make_config(main=line(route, **kwargs)))


def test_a_caller_who_hangs_up_before_the_bridge_forms_was_not_answered() -> None:
    h = harness()
    h.arrive()
    h.advance(2)
    h.answer("alice", bridged=False)
    assert h.engine.board.talking["alice"] == "c1"
    h.hangup("c1")

    assert h.verdict() == ("missed", "ring_group_caller_hangup")
    assert h.records["c1"].answered_by is None
    assert "alice" not in h.engine.board.talking
    assert act.DestroyBridge("c1", "callkeeper-c1") in h.actions


def test_answered_when_both_are_in_the_bridge_and_only_then() -> None:
    h = harness()
    h.arrive()
    leg = h.dialed_legs()[0].leg_id
    h.feed(ev.LegProgress(leg, "ANSWER", h.now))
    h.feed(ev.ChannelBridged("c1", "callkeeper-c1", h.now))
    assert not any(isinstance(a, act.Log) and a.event == "call_answered" for a in h.actions)
    h.feed(ev.ChannelBridged(leg, "some-other-bridge", h.now))
    assert h.records["c1"].answered_by is None
    h.advance(1)
    h.feed(ev.ChannelBridged(leg, "callkeeper-c1", h.now))

    assert any(isinstance(a, act.Log) and a.event == "call_answered" for a in h.actions)
    assert h.records["c1"].answered_by == "alice"
    assert [s.stage for s in h.records["c1"].steps][-1] == "answered"
    assert h.records["c1"].steps[-1].at == h.now
    h.hangup("c1")
    assert h.verdict() == ("answered", "answered")


def test_a_user_who_hangs_up_before_the_bridge_forms_does_not_lose_the_caller() -> None:
    h = harness()
    h.arrive()
    h.answer("alice", bridged=False)
    h.hangup(h.leg("alice"))

    assert "c1" in h.engine.calls
    assert "alice" not in h.engine.board.talking
    assert h.dialed_legs()[-1].endpoint.startswith("Local/carol")  # the group's next layer
    h.answer("carol")
    h.hangup("c1")
    assert h.verdict() == ("answered", "answered")


def test_ring_time_ends_when_asterisk_says_the_legs_are_gone() -> None:
    h = harness()
    h.arrive()
    alice, bob = h.leg("alice"), h.leg("bob")
    h.now += timedelta(seconds=20)
    token = h.timers.pop(("c1", Timer.RING))[1]
    out = h.feed(ev.TimerFired("c1", Timer.RING, token, h.now))
    assert {a.channel_id for a in out if isinstance(a, act.Hangup)} == {alice, bob}
    assert not any(isinstance(a, act.DialLeg) for a in out)
    h.hangup(alice)
    h.hangup("c1")  # before Asterisk got to bob's hangup: the caller left while it rang

    assert h.verdict() == ("missed", "ring_group_caller_hangup")


def test_ring_time_ends_without_word_from_asterisk_after_a_while() -> None:
    h = harness()
    h.arrive()
    h.now += timedelta(seconds=20)
    token = h.timers.pop(("c1", Timer.RING))[1]
    h.feed(ev.TimerFired("c1", Timer.RING, token, h.now))
    h.advance(59)
    assert not h.dialed_legs()[-1].endpoint.startswith("Local/carol")
    h.advance(2)

    assert h.dialed_legs()[-1].endpoint.startswith("Local/carol")
    assert any(isinstance(a, act.Log) and a.event == "ringing_legs_not_gone" for a in h.actions)


def test_a_hangup_stamped_before_a_timer_decision_counts_as_where_the_caller_was() -> None:
    h = harness("ring_group:queued")
    h.engine.board.away.update({"alice", "bob"})
    h.arrive()
    h.advance(60)  # max wait: the daemon sends the caller to voicemail
    assert h.dialed_legs()[-1].endpoint.startswith("Local/s@callkeeper-voicemail")
    h.feed(ev.ChannelHungUp("c1", h.now - timedelta(seconds=1)))  # late, from a busy Asterisk
    h.advance(5)  # no voicemail result comes

    assert h.verdict() == ("missed", "queue_caller_hangup")


def test_a_ring_group_without_welcome_rings_unanswered_and_answers_to_connect() -> None:
    h = harness()
    h.arrive()
    assert not any(isinstance(a, act.Answer) for a in h.actions)
    h.answer("alice")
    kinds = [type(a) for a in h.actions if isinstance(a, act.Answer | act.BridgeChannels | act.StopRing)]
    assert kinds == [act.Answer, act.BridgeChannels]  # the answer ends the ringing


def test_a_caller_answered_for_a_welcome_has_the_ringback_stopped_before_the_bridge() -> None:
    h = harness(welcome="sound:hello-world")
    h.arrive()
    h.playback_done()
    h.answer("alice")
    kinds = [type(a) for a in h.actions if isinstance(a, act.Answer | act.BridgeChannels | act.StopRing)]
    assert kinds == [act.Answer, act.StopRing, act.BridgeChannels]


def test_audio_and_voicemail_answer_the_caller_first_and_once() -> None:
    for route, kwargs in (
        ("ring_group:sales", {"welcome": "sound:hello-world"}),
        ("ivr:menu", {}),
        ("voicemail", {}),
    ):
        h = harness(route, **kwargs)
        h.arrive()
        h.advance(40)
        answers = [i for i, a in enumerate(h.actions) if isinstance(a, act.Answer)]
        heard = [i for i, a in enumerate(h.actions) if isinstance(a, act.Play | act.DialLeg)]
        assert len(answers) == 1 and answers[0] < heard[0], route


def test_a_bridge_that_fails_because_the_caller_left_is_no_failure() -> None:
    h = harness()
    h.arrive()
    h.answer("alice", bridged=False)
    h.feed(ev.ActionFailed("c1", BRIDGE, "", True, "Channel not found", h.now))
    assert "c1" in h.engine.calls
    h.hangup("c1")
    assert h.verdict() == ("missed", "ring_group_caller_hangup")

    h = harness()
    h.arrive()
    h.answer("alice", bridged=False)
    h.feed(ev.ActionFailed("c1", BRIDGE, "", False, "Internal Server Error", h.now))
    assert h.verdict() == ("missed", "failure")


def test_a_welcome_that_failed_to_start_is_stopped_before_the_users_ring() -> None:
    h = harness(welcome="sound:hello-world")
    h.arrive()
    playing = next(a for a in h.actions if isinstance(a, act.Play))
    out = h.feed(ev.ActionFailed("c1", PLAY, "c1", False, "Internal Server Error", h.now))

    assert out[0] == act.StopPlayback("c1", playing.playback_id)
    assert any(isinstance(a, act.DialLeg) for a in out)


def test_a_welcome_asterisk_did_not_answer_for_counts_once_it_is_heard() -> None:
    h = harness(welcome="sound:hello-world")
    h.arrive()
    playing = next(a for a in h.actions if isinstance(a, act.Play))
    h.feed(ev.ActionFailed("c1", PLAY, "c1", False, "timed out", h.now, unanswered=True))
    h.advance(12)
    assert not h.dialed_legs()
    h.hangup("c1")  # while Asterisk, late, plays the welcome
    assert h.verdict() == ("abandoned", "welcome_hangup")

    h = harness(welcome="sound:hello-world")
    h.arrive()
    h.feed(ev.ActionFailed("c1", PLAY, "c1", False, "timed out", h.now, unanswered=True))
    h.advance(5)
    h.feed(ev.PlaybackDone(playing.playback_id, h.now))
    assert h.dialed_legs() and ("c1", Timer.PLAYBACK_LOST) not in h.timers

    h = harness(welcome="sound:hello-world")
    h.arrive()
    h.feed(ev.ActionFailed("c1", PLAY, "c1", False, "timed out", h.now, unanswered=True))
    h.advance(21)  # never played: on without it
    assert act.StopPlayback("c1", playing.playback_id) in h.actions and h.dialed_legs()
