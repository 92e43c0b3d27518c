"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web

from tests.unit.test_ari_rest import FakeAri


@pytest.fixture
async def fake_ari() -> AsyncIterator[tuple[FakeAri, test_utils.TestServer]]:
    """An ARI HTTP server that records every request and answers `FakeAri.reply`."""
    ari = FakeAri()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ari.handle)
    server = test_utils.TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield ari, server
    await server.close()
