"""Reconcile after every (re)connect: Asterisk sent nothing while we were away, so what it has
(channels, bridges) is compared with what the engine follows and with the records left open.
Pure: the shell lists, asks the engine what it follows between the steps (each step's inputs
change it), and carries out the plan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from callkeeper.ari.events import Bridge, Channel
from callkeeper.calls import inputs as ev
from callkeeper.calls.call import BRIDGE_PREFIX
from callkeeper.calls.engine import Following
from callkeeper.records import CallRecord


def cut_offs(following: Following, channels: Iterable[Channel], now: datetime) -> list[ev.ChannelHungUp]:
    """Channels we follow that are gone. A vanished caller cuts its call off, its end not observed
    (first, so that its vanished legs change nothing); a vanished leg of a caller still there is
    a leg that ended."""
    present = {channel.id for channel in channels}
    gone = [c for c in following.channels if c not in present]
    return [
        ev.ChannelHungUp(channel_id, now, observed=channel_id not in following.callers)
        for channel_id in sorted(gone, key=lambda c: c not in following.callers)
    ]


@dataclass(frozen=True, slots=True)
class Adoptions:
    adopt: list[ev.CallAdopted]  # callers in our app that no call follows (a daemon before us died)
    orphans: list[str]  # other channels of our app that no call follows: to be hung up
    records: dict[str, CallRecord]  # the open records no caller was found for


def adoptions(
    app: str,
    following: Following,
    channels: Sequence[Channel],
    bridges: Sequence[Bridge],
    *,
    open_records: Sequence[CallRecord],
    now: datetime,
) -> Adoptions:
    """The channels of our app that no call follows: callers to adopt with their open record and
    the legs they had dialed, and orphans."""
    bridge_of = {channel: bridge.id for bridge in bridges for channel in bridge.channels}
    records = {record.id: record for record in open_records}
    callers: list[tuple[Channel, str]] = []
    legs: dict[str, list[Channel]] = defaultdict(list)
    followed = set(following.channels)
    for channel in channels:
        app_data = channel.dialplan.app_data.split(",")
        if channel.id in followed or channel.dialplan.app_name != "Stasis" or app_data[0] != app:
            continue
        if len(app_data) >= 3 and app_data[1] == "inbound":
            callers.append((channel, app_data[2]))
        elif len(app_data) >= 3 and app_data[1] == "leg":
            legs[app_data[2]].append(channel)
        else:
            legs[""].append(channel)  # of no call at all
    adopt = [
        ev.CallAdopted(
            channel.id,
            channel.caller.number,
            channel.caller.name,
            dialed,
            channel.state == "Up",
            bridge_of.get(channel.id),
            tuple(
                ev.AdoptedLeg(leg.id, leg.name, leg.state == "Up", bridge_of.get(leg.id))
                for leg in legs.pop(channel.id, [])
            ),
            records.pop(channel.id, None),
            now,
        )
        for channel, dialed in callers
    ]
    return Adoptions(adopt, [leg.id for call_legs in legs.values() for leg in call_legs], records)


def orphan_bridges(following: Following, bridges: Iterable[Bridge]) -> list[str]:
    """Bridges of ours that no call has."""
    return [b.id for b in bridges if b.id.startswith(BRIDGE_PREFIX) and b.id not in following.bridges]


def unobserved(following: Following, records: Mapping[str, CallRecord]) -> list[CallRecord]:
    """Open records of calls that ended while no daemon watched."""
    return [record for record in records.values() if record.id not in following.calls]
