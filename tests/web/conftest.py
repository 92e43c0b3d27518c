"""The web inbox over the sample inbox: an app factory and a signed-in test client."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callkeeper.api.server import build_app
from callkeeper.config.model import Config
from callkeeper.web.app import WebInbox
from callkeeper.web.sessions import LoginBrake
from tests.unit.test_api_fakes import HTTP, fakes
from tests.web.sample import PASSWORD, SampleInbox, sample_config, sample_password_hash, write_tone

Client = TestClient[web.Request, web.Application]
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@functools.cache
def password_hash() -> str:
    return sample_password_hash()


@dataclass
class Site:
    inbox: SampleInbox
    config: Config
    brake: LoginBrake = field(default_factory=LoginBrake)

    def app(self) -> web.Application:
        pages = WebInbox(self.inbox, self.inbox, lambda: self.config, b"test-session-key", self.brake)
        history, control = fakes()
        return build_app(history, control, HTTP, pages=pages)


def client_for(site: Site) -> Client:
    return TestClient(TestServer(site.app()))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(SampleInbox(write_tone(tmp_path / "message.wav")), sample_config(password_hash()))


@pytest.fixture
async def anonymous(site: Site) -> AsyncIterator[Client]:
    async with client_for(site) as client:
        yield client


async def csrf_of(client: Client, path: str) -> str:
    response = await client.get(path)
    found = CSRF_FIELD.search(await response.text())
    assert found, f"no CSRF field on {path}"
    return found.group(1)


async def sign_in(client: Client, user: str = "alice", password: str = PASSWORD) -> None:
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login",
        data={"username": user, "password": password, "csrf": token, "next": "/"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


@pytest.fixture
async def alice(anonymous: Client) -> Client:
    await sign_in(anonymous)
    return anonymous
