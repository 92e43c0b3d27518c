"""The plan of a reconcile after a connect, from what Asterisk has and what the engine follows."""

from __future__ import annotations

from datetime import UTC, datetime

from callkeeper.ari.events import Bridge, CallerId, Channel, DialplanCep
from callkeeper.calls import inputs as ev
from callkeeper.calls.engine import Following
from callkeeper.records import CallRecord, Direction
from callkeeper.service import reconcile

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
APP = "callkeeper"


def channel(channel_id: str, app_data: str, *, state: str = "Up", app: str = "Stasis") -> Channel:
    return Channel(
        channel_id,
        f"PJSIP/{channel_id}-00000001",
        state,
        CallerId("Ann", "+14155550111"),
        CallerId("", ""),
        DialplanCep("callkeeper-inbound", "s", 1, app, app_data),
        NOW,
        "en",
    )


def following(*calls: tuple[str, ...]) -> Following:
    """Calls as (caller's channel, legs...)."""
    return Following(
        tuple(c for call in calls for c in call),
        frozenset(call[0] for call in calls),
        frozenset(call[0] for call in calls),
        frozenset(f"callkeeper-{call[0]}" for call in calls),
    )


def open_record(call_id: str) -> CallRecord:
    return CallRecord(call_id, Direction.INBOUND, "main", "+14155550111", "+12125550100", NOW)


def test_a_vanished_caller_is_cut_off_before_the_vanished_legs_end() -> None:
    ours = following(("c1", "c1-leg-1", "c1-leg-2"), ("c2", "c2-leg-3"))
    present = [channel("c1", f"{APP},inbound,+12125550100"), channel("c1-leg-2", f"{APP},leg,c1")]

    hangups = reconcile.cut_offs(ours, present, NOW)

    assert hangups == [
        ev.ChannelHungUp("c2", NOW, observed=False),
        ev.ChannelHungUp("c1-leg-1", NOW, observed=True),
        ev.ChannelHungUp("c2-leg-3", NOW, observed=True),
    ]


def test_nothing_is_cut_off_while_asterisk_has_every_channel() -> None:
    ours = following(("c1", "c1-leg-1"))
    present = [channel("c1", f"{APP},inbound,+1"), channel("c1-leg-1", f"{APP},leg,c1")]
    assert reconcile.cut_offs(ours, present, NOW) == []


def test_a_caller_nobody_follows_is_adopted_with_its_legs_bridge_and_record() -> None:
    channels = [
        channel("c9", f"{APP},inbound,+12125550100"),
        channel("c9-leg-4", f"{APP},leg,c9"),
        channel("c9-leg-5", f"{APP},leg,c9", state="Ringing"),
        channel("c1", f"{APP},inbound,+12125550100"),  # followed
        channel("x-leg-1", f"{APP},leg,gone-call"),  # its caller is gone
        channel("stray", APP),  # of no call at all
        channel("other", "otherapp,inbound,+1"),
        channel("dialplan", "", app="Dial"),
    ]
    bridges = [Bridge("callkeeper-c9", "simple_bridge", "mixing", "", ("c9", "c9-leg-4"))]
    records = [open_record("c9"), open_record("c7")]

    plan = reconcile.adoptions(APP, following(("c1",)), channels, bridges, open_records=records, now=NOW)

    assert plan.adopt == [
        ev.CallAdopted(
            "c9",
            "+14155550111",
            "Ann",
            "+12125550100",
            True,
            "callkeeper-c9",
            (
                ev.AdoptedLeg("c9-leg-4", "PJSIP/c9-leg-4-00000001", True, "callkeeper-c9"),
                ev.AdoptedLeg("c9-leg-5", "PJSIP/c9-leg-5-00000001", False, None),
            ),
            records[0],
            NOW,
        )
    ]
    assert plan.orphans == ["x-leg-1", "stray"]
    assert list(plan.records) == ["c7"]


def test_bridges_and_open_records_no_call_has_are_left_over() -> None:
    ours = following(("c1",), ("c9",))
    bridges = [
        Bridge("callkeeper-c1", "simple_bridge", "mixing", "", ()),
        Bridge("callkeeper-c5", "simple_bridge", "mixing", "", ()),
        Bridge("someone-elses", "simple_bridge", "mixing", "", ()),
    ]
    records = {"c9": open_record("c9"), "c7": open_record("c7")}

    assert reconcile.orphan_bridges(ours, bridges) == ["callkeeper-c5"]
    assert reconcile.unobserved(ours, records) == [records["c7"]]
