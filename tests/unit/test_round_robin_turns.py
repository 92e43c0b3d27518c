"""Round-robin turns survive a restart and are shared by hosts: the engine says who took a call of a
round-robin group, the shell keeps it in the store and feeds back what other hosts wrote."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.service.turns import KEY, RoundRobinTurns
from callkeeper.store import open_store
from tests.unit.engine_harness import T0, Harness, line, make_config


def harness(route: str) -> Harness:
    return Harness(make_config(main=line(route)))


def test_the_engine_says_who_took_a_round_robin_call() -> None:
    h = harness("ring_group:rr")
    h.arrive("c1")
    h.advance(1)
    h.answer("alice")
    assert [a for a in h.actions if isinstance(a, act.TakeTurn)] == [act.TakeTurn("c1", "rr", "alice")]

    other = harness("ring_group:seq")
    other.arrive("c1")
    other.answer("alice")
    assert not [a for a in other.actions if isinstance(a, act.TakeTurn)]


def test_a_turn_taken_elsewhere_moves_the_next_call_on() -> None:
    h = harness("ring_group:rr")
    h.feed(ev.TurnTaken("rr", "bob", T0))
    h.arrive("c1")
    assert h.dialed_legs()[-1].endpoint.startswith("Local/carol")


class FakeStore:
    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.write_started = asyncio.Event()
        self.release_writes = asyncio.Event()
        self.release_writes.set()

    async def get_state(self, key: str) -> str | None:
        return self.state.get(key)

    async def set_state(self, key: str, value: str | None) -> None:
        self.write_started.set()
        await self.release_writes.wait()
        assert value is not None
        self.state[key] = value


async def test_turns_are_written_and_read_back_once() -> None:
    store = FakeStore()
    fed: list[ev.Input] = []
    turns = RoundRobinTurns(store, fed.append, make_config(main=line("ring_group:rr")), clock=lambda: T0)
    assert turns.groups == ("rr",)
    await turns.sync()
    assert fed == []
    store.state[KEY + "rr"] = "alice"  # another host, or before the restart
    await turns.sync()
    await turns.sync()
    assert fed == [ev.TurnTaken("rr", "alice", T0)]

    turns.taken("rr", "carol")
    await turns.close()
    assert store.state[KEY + "rr"] == "carol"
    await turns.sync()
    assert fed == [ev.TurnTaken("rr", "alice", T0)]  # its own turn is not fed back


async def test_a_read_while_a_turn_is_being_written_is_stale_and_ignored() -> None:
    store = FakeStore()
    store.state[KEY + "rr"] = "alice"
    fed: list[ev.Input] = []
    turns = RoundRobinTurns(store, fed.append, make_config(main=line("ring_group:rr")), clock=lambda: T0)
    store.release_writes.clear()
    turns.taken("rr", "bob")
    await store.write_started.wait()
    await turns.sync()  # reads "alice": older than the turn on its way to the store
    assert fed == []
    store.release_writes.set()
    await turns.close()
    assert store.state[KEY + "rr"] == "bob"


async def test_two_hosts_share_turns_through_the_store(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'callkeeper.db'}"
    config = make_config(main=line("ring_group:rr"))
    first, second = await open_store(url, "pbx-1"), await open_store(url, "pbx-2")
    fed: list[ev.Input] = []
    learnt = asyncio.Event()

    def feed(item: ev.Input) -> None:
        fed.append(item)
        learnt.set()

    try:
        one = RoundRobinTurns(first, lambda _: None, config, clock=lambda: T0)
        two = RoundRobinTurns(second, feed, config, clock=lambda: T0, poll_seconds=0.01)
        two.start()
        one.taken("rr", "carol")
        await one.close()
        async with asyncio.timeout(5):
            await learnt.wait()
        await two.close()
        assert fed == [ev.TurnTaken("rr", "carol", T0)]
    finally:
        await first.close()
        await second.close()
