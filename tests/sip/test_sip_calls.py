"""Calls that speak SIP: a trunk's callers and users' phones played by SIPp, callkeeper in between,
and what went over the wire read back from each side's message trace."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Sandbox
from tests.integration.daemon import TOKEN, RunningDaemon, running_daemon
from tests.integration.sandbox_calls import wait_until
from tests.sip.harness import (
    FOREVER_MS,
    NATIVE_TRUNK_HOST,
    Caller,
    Phone,
    RtpPeer,
    SipMessage,
    callers,
    phone,
    phones,
    sdp_address,
    tone,
)

PHONES = [f"phone{n}" for n in range(1, 9)]
FIRST = "+15550002001"  # rings phone1
TRIO = "+15550002002"  # rings phone1, phone2 and phone3
LOAD = "+15550002003"  # rings phone1..phone6
SALES = "+15550002004"  # rings phone1 and phone2, names prefixed "Sales: "
WAITING = "+15550002005"  # rings phone1 and phone2 even when busy
HANDOFF = "+15550002006"  # handed to app_queue's [handoff] (member phone1), 30 s at most
HANDOFF_QUICK = "+15550002007"  # the same queue, 3 s at most

CONFIG: dict[str, Any] = {
    "users": {name: {"endpoint": f"PJSIP/{name}"} for name in PHONES},
    "ring_groups": {
        "first": {"members": ["phone1"], "ring_seconds": 20},
        "trio": {"members": ["phone1", "phone2", "phone3"], "ring_seconds": 30},
        "load": {"members": PHONES[:6], "ring_seconds": 20},
        "sales": {"members": ["phone1", "phone2"], "ring_seconds": 20, "cid_name_prefix": "Sales: "},
        "waiting": {"members": ["phone1", "phone2"], "ring_seconds": 20, "ring_when_busy": True},
    },
    "lines": {
        "first": {"numbers": [FIRST], "route": "ring_group:first"},
        "trio": {"numbers": [TRIO], "route": "ring_group:trio"},
        "load": {"numbers": [LOAD], "route": "ring_group:load"},
        "sales": {"numbers": [SALES], "route": "ring_group:sales", "cid_name_prefix": "Main: "},
        "waiting": {"numbers": [WAITING], "route": "ring_group:waiting"},
        "handoff": {"numbers": [HANDOFF], "route": "dialplan:test-handoff,queue,1"},
        "handoff-quick": {"numbers": [HANDOFF_QUICK], "route": "dialplan:test-handoff,quick"},
    },
}
for _line in CONFIG["lines"].values():
    _line["missed_calls"] = {"mailbox": "1000@default"}

Json = dict[str, Any]


@pytest.fixture(scope="module")
def daemon(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with running_daemon(sandbox, tmp_path_factory.mktemp("sip"), CONFIG) as running:
        yield running


@pytest.fixture
def asterisk(sandbox: Sandbox) -> tuple[str, int]:
    return sandbox.sip_host, sandbox.sip_port


async def records_of(daemon: RunningDaemon, numbers: list[str], within: float = 30) -> dict[str, Json]:
    """The finished record of each caller's number (latest call of each)."""
    found: dict[str, Json] = {}

    async def all_decided() -> bool:
        status, body = await daemon.api("GET", "/api/v1/calls?limit=500")
        assert status == 200, body
        for record in reversed(body["calls"]):
            if record["caller"] in numbers and record["outcome"]:
                found[record["caller"]] = record
        return all(number in found for number in numbers)

    await wait_until(all_decided, within=within, what=f"records of {len(numbers)} calls")
    return found


def statuses(dialog: list[SipMessage]) -> list[int]:
    """Responses the caller received to its INVITE, in order."""
    return [m.status for m in dialog if not m.sent and m.status is not None and m.cseq_method == "INVITE"]


def first(
    dialog: list[SipMessage], *, sent: bool, method: str | None = None, status: int | None = None
) -> SipMessage:
    """The first message of `dialog` sent (or received) with that method, or that status to the INVITE."""
    for message in dialog:
        if message.sent == sent and (
            (method is not None and message.method == method)
            or (status is not None and message.status == status and message.cseq_method == "INVITE")
        ):
            return message
    seen = [m.start_line for m in dialog]
    raise AssertionError(f"no {'sent' if sent else 'received'} {method or status} in {seen}")


async def test_caller_hears_ringing_before_the_phone_answers(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    number = "+14155550101"
    async with phone(asterisk, "phone1", tmp_path, ring_ms=1500) as alice:
        async with callers(asterisk, [Caller(FIRST, number)], tmp_path, talk_ms=1000) as trunk:
            assert await trunk.wait(30) == 0, trunk.sipp.describe()
        dialog = trunk.dialogs()[number]
        assert statuses(dialog)[-2:] == [180, 200], statuses(dialog)
        ringing = first(dialog, sent=False, status=180)
        answer = first(dialog, sent=False, status=200)
        phone_answer = first(alice.messages(), sent=True, status=200)
        assert ringing.at < phone_answer.at < answer.at
        assert (await records_of(daemon, [number]))[number]["answered_by"] == "phone1"


async def test_callers_cancel_reaches_every_ringing_phone(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    number = "+14155550102"
    async with (
        phone(asterisk, "phone1", tmp_path) as one,
        phone(asterisk, "phone2", tmp_path) as two,
        phone(asterisk, "phone3", tmp_path) as three,
    ):
        async with callers(asterisk, [Caller(TRIO, number)], tmp_path, give_up_ms=2000) as trunk:
            assert await trunk.wait(30) == 0, trunk.sipp.describe()
        dialog = trunk.dialogs()[number]
        assert 200 not in statuses(dialog) and statuses(dialog)[-1] == 487, statuses(dialog)
        cancel = first(dialog, sent=True, method="CANCEL")

        async def every_phone_cancelled() -> bool:
            return all(p.received("CANCEL") for p in (one, two, three))

        await wait_until(every_phone_cancelled, within=5, what="a CANCEL at every phone")
        for ringing in (one, two, three):
            (invite,) = ringing.invites()
            (cancelled,) = ringing.received("CANCEL")
            assert invite.at < cancel.at < cancelled.at, ringing.endpoint
            assert "cause=200" not in (cancelled.header("Reason") or ""), (
                "the caller gave up: nobody answered"
            )
            assert [m.status for m in ringing.messages() if m.sent][-1] == 487
    record = (await records_of(daemon, [number]))[number]
    assert (record["outcome"], record["reason"]) == ("missed", "ring_group_caller_hangup")


@pytest.mark.parametrize("who_hangs_up", ["caller", "phone"])
async def test_hangup_passes_both_ways(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path, who_hangs_up: str
) -> None:
    number = "+14155550103" if who_hangs_up == "caller" else "+14155550104"
    caller_talks, phone_talks = (1000, FOREVER_MS) if who_hangs_up == "caller" else (FOREVER_MS, 1000)
    async with phone(asterisk, "phone1", tmp_path, ring_ms=200, talk_ms=phone_talks) as alice:
        async with callers(asterisk, [Caller(FIRST, number)], tmp_path, talk_ms=caller_talks) as trunk:
            assert await trunk.wait(30) == 0, trunk.sipp.describe()
        dialog = trunk.dialogs()[number]

        async def phone_done() -> bool:
            return any(m.status == 200 and m.cseq_method == "BYE" for m in alice.messages())

        await wait_until(phone_done, within=5, what="the BYE's 200 OK at the phone")
        phone_dialog = alice.messages()
        hanging_up, other = (dialog, phone_dialog) if who_hangs_up == "caller" else (phone_dialog, dialog)
        bye, passed = first(hanging_up, sent=True, method="BYE"), first(other, sent=False, method="BYE")
        assert 0 <= passed.at - bye.at < 0.5
    record = (await records_of(daemon, [number]))[number]
    assert (record["outcome"], record["answered_by"]) == ("answered", "phone1")
    await daemon.assert_nothing_left()


async def test_audio_passes_both_ways(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    """Each side sends 2 s of distinct frames once the call is up; the other side receives them,
    byte for byte and in order (Asterisk may drop the first few while it learns the source)."""
    number = "+14155550105"
    frames = 100
    async with (
        phone(asterisk, "phone1", tmp_path, ring_ms=200) as alice,
        callers(asterisk, [Caller(FIRST, number)], tmp_path, talk_ms=5000) as trunk,
    ):

        async def both_up() -> list[SipMessage]:
            """The caller's 200 OK and the phone's INVITE (their SDP), once the phone has its ACK."""
            answer = [m for m in trunk.messages() if not m.sent and m.status == 200 and m.body]
            return [answer[0], alice.received("INVITE")[0]] if answer and alice.received("ACK") else []

        caller_answer, phone_invite = await wait_until(both_up, within=10, what="the call up on both sides")
        caller_sent, phone_sent = tone(1, frames), tone(2, frames)
        await asyncio.gather(
            trunk.rtp.send(sdp_address(caller_answer), caller_sent),
            alice.rtp.send(sdp_address(phone_invite), phone_sent),
        )
        await asyncio.sleep(0.5)
        assert_heard(alice.rtp, caller_sent, "the phone")
        assert_heard(trunk.rtp, phone_sent, "the caller")
        assert await trunk.wait(30) == 0, trunk.sipp.describe()


def assert_heard(listener: RtpPeer, sent: list[bytes], who: str) -> None:
    heard = [payload for payload in listener.received if payload in sent]
    assert len(heard) >= 0.9 * len(sent), f"{who} heard {len(heard)} of {len(sent)} frames"
    assert heard == sorted(heard, key=sent.index), f"{who} heard the frames out of order"


async def test_load_of_sixty_calls_answered_by_phones(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    """60 calls at 2 per second into a ring group of six phones that answer after 0.3 to 1.05 s;
    each caller talks 1 s and hangs up. Every caller hears ringing, then is put through; 60 records
    say answered, by a phone of the group, for the right caller."""
    numbers = [f"+1415555{index:04d}" for index in range(60)]
    async with phones(asterisk, tmp_path, {f"phone{n}": 150 + 150 * n for n in range(1, 7)}):
        async with callers(
            asterisk, [Caller(LOAD, n) for n in numbers], tmp_path, rate=2, talk_ms=1000
        ) as trunk:
            assert await trunk.wait(90) == 0, trunk.sipp.describe()
        by_number = trunk.dialogs()
    for number in numbers:
        got = statuses(by_number[number])
        assert 180 in got and got[-1] == 200 and got.index(180) < got.index(200), (number, got)
    records = await records_of(daemon, numbers)
    wrong = {
        n: (r["outcome"], r["reason"], r["answered_by"])
        for n, r in records.items()
        if (r["outcome"], r["reason"]) != ("answered", "answered") or r["answered_by"] not in PHONES[:6]
    }
    assert not wrong
    await daemon.assert_nothing_left()


async def test_phones_show_the_callers_number_and_prefixed_name(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    number = "+14155550106"
    async with (
        phones(asterisk, tmp_path, {"phone1": 500, "phone2": FOREVER_MS}) as ringing,
        callers(asterisk, [Caller(SALES, number, "Carl Caller")], tmp_path, talk_ms=500) as trunk,
    ):
        assert await trunk.wait(30) == 0, trunk.sipp.describe()
    for rung in ringing.values():
        (invite,) = rung.invites()
        assert invite.identity("From") == ("Sales: Carl Caller", number), invite.header("From")
        assert invite.identity("P-Asserted-Identity") == ("Sales: Carl Caller", number)


async def test_phones_that_lost_the_race_hear_it_was_answered_elsewhere(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    """Dial() says so too: phones keep such a call out of their missed list."""
    number = "+14155550107"
    async with phones(
        asterisk, tmp_path, {"phone1": 500, "phone2": FOREVER_MS, "phone3": FOREVER_MS}
    ) as ringing:
        async with callers(asterisk, [Caller(TRIO, number)], tmp_path, talk_ms=1000) as trunk:
            assert await trunk.wait(30) == 0, trunk.sipp.describe()
        for loser in (ringing["phone2"], ringing["phone3"]):
            (cancel,) = loser.received("CANCEL")
            reason = cancel.header("Reason") or ""
            assert "cause=200" in reason and "Call completed elsewhere" in reason, reason
    assert (await records_of(daemon, [number]))[number]["answered_by"] == "phone1"


async def wait_presence(daemon: RunningDaemon, user: str, presence: str) -> None:
    async def reached() -> bool:
        status, body = await daemon.api("GET", f"/api/v1/users/{user}/presence")
        return status == 200 and body["presence"] == presence

    await wait_until(reached, within=5, what=f"{user} {presence}")


async def invites_after_a_call_outside_callkeeper(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path, dialled: str, number: str
) -> dict[str, Phone]:
    """phone1 takes a call that Asterisk's own Dial() put through; meanwhile a call to `dialled`
    comes in to callkeeper. Returns the phones, after both calls."""
    outside = Caller("+15550009999", "+14155550199", dial="PJSIP/phone1")
    async with phones(asterisk, tmp_path, {"phone1": 200, "phone2": 300}) as ringing:
        async with callers(
            asterisk, [outside], tmp_path, name="outside", trunk_host=NATIVE_TRUNK_HOST, talk_ms=6000
        ) as busy_call:
            await wait_presence(daemon, "phone1", "busy")
            async with callers(asterisk, [Caller(dialled, number)], tmp_path, talk_ms=500) as trunk:
                assert await trunk.wait(30) == 0, trunk.sipp.describe()
            assert await busy_call.wait(30) == 0, busy_call.sipp.describe()
        await wait_presence(daemon, "phone1", "available")
        return ringing


async def test_a_phone_busy_on_a_call_outside_callkeeper_is_not_rung(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    ringing = await invites_after_a_call_outside_callkeeper(daemon, asterisk, tmp_path, SALES, "+14155550108")
    assert len(ringing["phone1"].invites()) == 1  # the outside call's only
    assert len(ringing["phone2"].invites()) == 1
    record = (await records_of(daemon, ["+14155550108"]))["+14155550108"]
    assert record["answered_by"] == "phone2"


async def test_a_busy_phone_is_rung_when_it_rings_when_busy(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    ringing = await invites_after_a_call_outside_callkeeper(
        daemon, asterisk, tmp_path, WAITING, "+14155550109"
    )
    assert len(ringing["phone1"].invites()) == 2  # call waiting: the outside call, then callkeeper's


async def events_handled(daemon: RunningDaemon) -> int:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(f"{daemon.base_url}/metrics") as response,
    ):
        text = await response.text()
    name = "callkeeper_event_lag_seconds_count"
    (count,) = (line.split()[1] for line in text.splitlines() if line.startswith(name))
    return int(float(count))


async def test_a_call_outside_callkeeper_costs_the_daemon_only_the_phones_device_states(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path
) -> None:
    """Asterisk forwards every event of every channel on an endpoint to the endpoint's subscribers:
    the daemon watches its users' device states, never `endpoint:PJSIP`, so the PBX's other calls
    cost it a few events (ringing, in use, free), not the trunk's and the phone's channels' (13 with
    `endpoint:PJSIP`)."""
    outside = Caller("+15550009998", "+14155550198", dial="PJSIP/phone1")
    async with phones(asterisk, tmp_path, {"phone1": 200}):
        await wait_presence(daemon, "phone1", "available")
        before = await events_handled(daemon)
        async with callers(
            asterisk, [outside], tmp_path, name="outside", trunk_host=NATIVE_TRUNK_HOST, talk_ms=500
        ) as call:
            assert await call.wait(30) == 0, call.sipp.describe()
        await wait_presence(daemon, "phone1", "available")
        await asyncio.sleep(0.5)
        assert 1 <= await events_handled(daemon) - before <= 4


@dataclass(frozen=True)
class Handoff:
    dialled: str
    ring_ms: int  # the queue member's phone
    give_up_ms: int  # the caller
    verdict: tuple[str, str]
    number: str


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            Handoff(HANDOFF, 500, FOREVER_MS, ("answered", "answered"), "+14155550110"), id="answered"
        ),
        pytest.param(
            Handoff(HANDOFF, FOREVER_MS, 2000, ("missed", "queue_caller_hangup"), "+14155550111"),
            id="caller_hangup",
        ),
        pytest.param(
            Handoff(HANDOFF_QUICK, FOREVER_MS, FOREVER_MS, ("missed", "queue_max_wait"), "+14155550112"),
            id="queue_timeout",
        ),
    ],
)
async def test_a_call_handed_to_an_app_queue_queue_gets_its_verdict(
    daemon: RunningDaemon, asterisk: tuple[str, int], tmp_path: Path, case: Handoff
) -> None:
    async with (
        phone(asterisk, "phone1", tmp_path, ring_ms=case.ring_ms) as member,
        callers(
            asterisk, [Caller(case.dialled, case.number)], tmp_path, give_up_ms=case.give_up_ms, talk_ms=1000
        ) as trunk,
    ):
        assert await trunk.wait(40) == 0, trunk.sipp.describe()
    record = (await records_of(daemon, [case.number]))[case.number]
    assert (record["outcome"], record["reason"]) == case.verdict, record
    assert record["steps"][0]["stage"] == "dialplan", record
    if case.verdict[0] == "answered":
        assert record["answered_by"] == "phone1"
        assert member.invites()
    await daemon.assert_nothing_left()
