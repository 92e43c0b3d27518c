"""Crash safety: the worker process is SIGKILLed with texts pending and with texts half sent (the
provider has them, the reply is still on its way), twice, on a real SQLite file. Restarted, it sends
every text exactly once as far as the provider is concerned: resends carry the same idempotency token,
which the provider recognises like Twilio does."""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import test_utils

from callkeeper.followups import FollowupService
from callkeeper.records import now_utc
from callkeeper.store import OutboxStatus, Store
from tests.followups.builders import SENDER, call, eventually
from tests.followups.crash_worker import crash_config
from tests.followups.fake_twilio import FakeTwilio, sid_for

REPO = Path(__file__).resolve().parents[2]
CALLS = {f"call-{n}": (f"+4474001234{n:02d}", "sales" if n <= 3 else "support") for n in range(1, 6)}
KEYS = {f"sms:{call_id}" for call_id in CALLS}


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeTwilio, str]]:
    # Each first request is accepted at once and answered a second later: the window to kill in.
    fake = FakeTwilio(first_reply_delay=1.0)
    server = test_utils.TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}"
    await server.close()


async def start_worker(storage: str, url: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.followups.crash_worker",
            storage,
            url,
            cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL


async def statuses(store: Store) -> dict[str, OutboxStatus]:
    return {call_id: (await store.outbox_for_call(call_id))[0].status for call_id in CALLS}


async def test_sigkilled_worker_sends_each_text_exactly_once(
    store: Store, store_url: str, provider: tuple[FakeTwilio, str], tmp_path: Path
) -> None:
    fake, url = provider
    log = tmp_path / "worker.log"
    async with aiohttp.ClientSession() as session:
        planner = FollowupService(crash_config(url), store, session=session, host="planner")
        for call_id in ("call-1", "call-2", "call-3"):
            number, line = CALLS[call_id]
            await planner.on_call_finished(call(call_id, caller=number, line_name=line, ended_at=now_utc()))

        first = await start_worker(store_url, url, log)
        try:
            await eventually(lambda: len(fake.requests) == 3, within=30)
            # Calls end while the worker is busy sending: their texts wait out the support line's delay.
            for call_id in ("call-4", "call-5"):
                number, line = CALLS[call_id]
                await planner.on_call_finished(
                    call(call_id, caller=number, line_name=line, ended_at=now_utc())
                )
        finally:
            await kill(first)
        assert set(fake.accepted) == {"sms:call-1", "sms:call-2", "sms:call-3"}
        assert await statuses(store) == {
            "call-1": OutboxStatus.SENDING,
            "call-2": OutboxStatus.SENDING,
            "call-3": OutboxStatus.SENDING,
            "call-4": OutboxStatus.PENDING,
            "call-5": OutboxStatus.PENDING,
        }

        second = await start_worker(store_url, url, log)
        try:
            await eventually(lambda: {"sms:call-4", "sms:call-5"} <= set(fake.requests), within=30)
        finally:
            await kill(second)
        killed_mid_send = await statuses(store)
        assert killed_mid_send["call-4"] is OutboxStatus.SENDING
        assert killed_mid_send["call-5"] is OutboxStatus.SENDING

        third = await start_worker(store_url, url, log)
        try:

            async def all_sent() -> bool:
                return set((await statuses(store)).values()) == {OutboxStatus.SENT}

            await eventually(all_sent, within=30)
        finally:
            await kill(third)

    # Exactly one message per call reached the provider, to the right number ...
    assert set(fake.accepted) == KEYS
    assert sorted(form["To"] for form in fake.accepted.values()) == sorted(
        number for number, _ in CALLS.values()
    )
    assert all(form["From"] == SENDER for form in fake.accepted.values())
    # ... no token was ever taken as a new message twice ...
    assert fake.new_messages == dict.fromkeys(KEYS, 1)
    # ... although every text was sent more than once: each kill cut a send short.
    assert all(count >= 2 for count in collections.Counter(fake.requests).values()), fake.requests
    for call_id in CALLS:
        (item,) = await store.outbox_for_call(call_id)
        assert (item.status, item.provider_id) == (OutboxStatus.SENT, sid_for(f"sms:{call_id}"))
        assert item.attempts >= 2
