"""What is known across calls: who is away, offline, talking or being offered a queued call, whose
phone is busy (on any call, by Asterisk's device state), whose turn it is in a round-robin group,
and who waits in which queue."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from callkeeper.calls.hours import Override
from callkeeper.config.model import Config, RingGroup, Strategy


def endpoint_key(dial_string: str) -> str:
    """`PJSIP/alice` and `PJSIP/alice@trunk` share the endpoint `PJSIP/alice`."""
    return dial_string.split("@", 1)[0]


@dataclass(slots=True)
class Switchboard:
    away: set[str] = field(default_factory=set)
    dnd: set[str] = field(default_factory=set)
    offline_endpoints: set[str] = field(default_factory=set)
    busy_devices: set[str] = field(default_factory=set)
    talking: dict[str, str] = field(default_factory=dict)
    offered: dict[str, str] = field(default_factory=dict)
    last_taker: dict[str, str] = field(default_factory=dict)
    queues: dict[str, list[str]] = field(default_factory=dict)
    line_overrides: dict[str, Override] = field(default_factory=dict)

    def set_online(self, endpoint: str, online: bool) -> bool:
        """Whether the endpoint came back online."""
        came_online = online and endpoint in self.offline_endpoints
        (self.offline_endpoints.discard if online else self.offline_endpoints.add)(endpoint)
        return came_online

    def reachable(self, config: Config, user: str) -> bool:
        """Not away nor do-not-disturb, and the phone is not known to be offline."""
        found = config.users.get(user)
        return (
            found is not None
            and user not in self.away
            and user not in self.dnd
            and endpoint_key(found.endpoint) not in self.offline_endpoints
        )

    def presence(self, config: Config, user: str) -> str:
        """`away`, `dnd`, `busy`, `offline` or `available`."""
        if user in self.away:
            return "away"
        if user in self.dnd:
            return "dnd"
        found = config.users.get(user)
        if user in self.talking or (found is not None and endpoint_key(found.endpoint) in self.busy_devices):
            return "busy"
        if found is not None and endpoint_key(found.endpoint) in self.offline_endpoints:
            return "offline"
        return "available"

    def available(self, config: Config, user: str, group: RingGroup | None = None) -> bool:
        """Reachable and neither on one of our calls nor with a phone in use, ringing or on hold,
        unless the user or the group rings when busy (phones with call waiting)."""
        if not self.reachable(config, user):
            return False
        busy = user in self.talking or endpoint_key(config.users[user].endpoint) in self.busy_devices
        return not busy or config.users[user].ring_when_busy or (group is not None and group.ring_when_busy)

    def ring_order(self, config: Config, group: RingGroup, layer: int, call_id: str) -> list[str]:
        """Available members of one layer in the order the group's strategy rings them."""
        members = [u for u in group.layers[layer] if self.available(config, u, group)]
        match group.strategy:
            case Strategy.ROUND_ROBIN:
                last = self.last_taker.get(group.name)
                ordered = list(group.layers[layer])
                if last in ordered:
                    start = ordered.index(last) + 1
                    ordered = ordered[start:] + ordered[:start]
                return [u for u in ordered if u in members]
            case Strategy.RANDOM:
                random.Random(f"{call_id}/{layer}").shuffle(members)
                return members
            case _:
                return members

    def enqueue(self, group: str, call_id: str) -> int:
        waiting = self.queues.setdefault(group, [])
        if call_id not in waiting:
            waiting.append(call_id)
        return waiting.index(call_id) + 1

    def dequeue(self, group: str, call_id: str) -> None:
        waiting = self.queues.get(group)
        if waiting and call_id in waiting:
            waiting.remove(call_id)

    def position(self, group: str, call_id: str) -> int:
        waiting = self.queues.get(group, [])
        return waiting.index(call_id) + 1 if call_id in waiting else 0

    def release(self, call_id: str) -> list[str]:
        """Free every user held by this call; returns who became free."""
        freed = [u for u, c in self.talking.items() if c == call_id]
        for user in freed:
            del self.talking[user]
        for user in [u for u, c in self.offered.items() if c == call_id]:
            del self.offered[user]
        return freed
