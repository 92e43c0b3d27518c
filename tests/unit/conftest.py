"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils

from tests.fake_ari import FakeAri, serve


@pytest.fixture
async def fake_ari() -> AsyncIterator[tuple[FakeAri, test_utils.TestServer]]:
    """An in-process ARI (REST, the event websocket, REST over it) that records every request and
    answers from its routes, responders or `FakeAri.reply`."""
    ari = FakeAri()
    server = await serve(ari)
    yield ari, server
    await ari.drop()
    await server.close()
