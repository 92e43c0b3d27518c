"""The inbox page with two daemons on one store (SQLite file or PostgreSQL): a session from one host is
good on the other, a call taken by host B reaches a page open on host A, and an item handled on B
leaves A's page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from bench.web_inbox import NoDialer, missed_call

from callkeeper.api.server import build_app
from callkeeper.inbox.service import InboxService
from callkeeper.records import now_utc
from callkeeper.store.base import Store
from callkeeper.web.app import SESSION_COOKIE, WebInbox
from callkeeper.web.sessions import session_key
from tests.unit.test_api_fakes import HTTP, fakes
from tests.web.conftest import Client, csrf_of, password_hash, sign_in
from tests.web.sample import sample_config

CONFIG = sample_config(password_hash())


def host_app(store: Store) -> web.Application:
    http = CONFIG.http
    pages = WebInbox(
        InboxService(store, lambda: CONFIG, NoDialer()),
        store,
        lambda: CONFIG,
        session_key(http.session_secret, http.token),
    )
    history, control = fakes()
    return build_app(history, control, HTTP, pages=pages)


@pytest.fixture
async def host_a(store: Store) -> AsyncIterator[Client]:
    async with TestClient(TestServer(host_app(store))) as client:
        yield client


@pytest.fixture
async def host_b(other_store: Store) -> AsyncIterator[Client]:
    async with TestClient(TestServer(host_app(other_store))) as client:
        yield client


async def next_event(stream: aiohttp.ClientResponse, within: float) -> bytes:
    async with asyncio.timeout(within):
        return await stream.content.readuntil(b"\n\n")


async def test_a_page_on_one_host_follows_the_other(
    host_a: Client, host_b: Client, other_store: Store
) -> None:
    await sign_in(host_a)
    cookie = host_a.session.cookie_jar.filter_cookies(host_a.make_url("/"))[SESSION_COOKIE].value
    host_b.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
    assert (await host_b.get("/", allow_redirects=False)).status == 200

    events = await host_a.get("/events", headers={"Accept": "text/event-stream"})
    await next_event(events, 2)
    record = replace(missed_call(1), line="Sales", started_at=now_utc(), ended_at=now_utc(), host="host-b")
    await other_store.save_call(record)
    assert (await next_event(events, 5)).startswith(b"event: version")
    assert "+1 202-000-0001" in await (await host_a.get("/inbox/rows")).text()

    token = await csrf_of(host_b, "/")
    response = await host_b.post(
        f"/calls/{record.id}/handled", data={"note": "called back"}, headers={"X-CSRF-Token": token}
    )
    assert response.status == 200
    assert (await next_event(events, 5)).startswith(b"event: version")
    assert "+1 202-000-0001" not in await (await host_a.get("/inbox/rows")).text()
    events.close()
