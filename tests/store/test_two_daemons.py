"""Two daemons (one per Asterisk host) on one PostgreSQL: each follow-up text and webhook goes out
once, whichever daemon sends it, and the once-per-caller window holds across them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import test_utils

from callkeeper.config.model import Secret, Webhook
from callkeeper.followups import FollowupService, OutboxSettings
from callkeeper.store import OutboxStatus, open_store
from tests.followups.builders import FakeClock, call, config, eventually, twilio
from tests.followups.fake_twilio import FakeTwilio

pytestmark = pytest.mark.postgres
SETTINGS = OutboxSettings(lease_seconds=5.0, send_timeout_seconds=2.0, poll_seconds=0.01, max_attempts=3)
CALLERS = [f"+4474001234{n:02d}" for n in range(20)]  # GB mobiles, like the line


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio()
    server = test_utils.TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_each_text_goes_out_once_from_two_daemons(
    postgres_url: str, provider: tuple[FakeTwilio, str]
) -> None:
    fake, url = provider
    hook = Webhook(f"{url}/hooks/crm", secret=Secret("s3cret"), events=frozenset({"call.ended"}))
    settings = config(providers={"twilio": twilio(url)}, webhooks=(hook,))
    clock = FakeClock()
    stores = [await open_store(postgres_url, host) for host in ("host-a", "host-b")]
    async with aiohttp.ClientSession() as session:
        daemons = [
            FollowupService(settings, store, session=session, host=store.host, clock=clock, settings=SETTINGS)
            for store in stores
        ]
        for daemon in daemons:
            daemon.start()
        try:
            # Each call ends on one host; a restarted host replays some of them: nothing doubles.
            calls = [call(f"call-{n}", caller=caller) for n, caller in enumerate(CALLERS)]
            await asyncio.gather(*(daemons[n % 2].on_call_finished(c) for n, c in enumerate(calls)))
            await asyncio.gather(*(daemons[(n + 1) % 2].on_call_finished(c) for n, c in enumerate(calls[:5])))
            # The same caller again, on the other host, inside the window: no second text.
            await daemons[1].on_call_finished(call("call-again", caller=CALLERS[0]))

            async def webhooks_done() -> bool:
                depth = await stores[0].outbox_depth()
                return len(fake.hooks) == len(CALLERS) + 1 and depth.get(OutboxStatus.SENDING, 0) == 0

            # The clock jumps only between sends: a jump under a send in flight would run its lease out
            # (the other host then sends it again, as after a crash; the receiver dedups by key).
            await eventually(webhooks_done, within=20)
            clock.advance(120)

            async def all_sent() -> bool:
                depth = await stores[0].outbox_depth()
                return depth.get(OutboxStatus.PENDING, 0) == 0 and depth.get(OutboxStatus.SENDING, 0) == 0

            await eventually(all_sent, within=20)
        finally:
            for daemon in daemons:
                await daemon.close()
            for store in stores:
                await store.close()
    assert sorted(fake.accepted) == sorted(f"sms:call-{n}" for n in range(len(CALLERS)))
    assert all(count == 1 for count in fake.new_messages.values())
    assert len(fake.requests) == len(CALLERS), "each text was sent by exactly one daemon, once"
    assert len(fake.hooks) == len(CALLERS) + 1, "one call.ended webhook per call"
