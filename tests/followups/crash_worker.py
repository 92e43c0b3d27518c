"""The daemon's follow-up side alone, run as a process the crash test SIGKILLs:
`python -m tests.followups.crash_worker <storage url> <twilio base url>`."""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp

from callkeeper.config.model import Config
from callkeeper.followups import FollowupService, OutboxSettings
from callkeeper.store import open_store
from tests.followups.builders import config, followup_text, line, twilio

PENDING_DELAY_SECONDS = 3
SETTINGS = OutboxSettings(
    lease_seconds=2.0,
    send_timeout_seconds=1.5,
    poll_seconds=0.05,
    retry_initial_seconds=0.2,
    retry_max_seconds=1.0,
)


def crash_config(twilio_url: str) -> Config:
    """`sales` texts at once, `support` after a few seconds."""
    return config(
        line("sales", text=followup_text(delay_seconds=0)),
        line("support", text=followup_text(delay_seconds=PENDING_DELAY_SECONDS)),
        providers={"twilio": twilio(twilio_url)},
    )


async def main(storage: str, twilio_url: str) -> None:
    store = await open_store(storage, f"crash-{os.getpid()}")
    async with aiohttp.ClientSession() as session:
        service = FollowupService(
            crash_config(twilio_url), store, session=session, host=store.host, settings=SETTINGS
        )
        service.start()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
