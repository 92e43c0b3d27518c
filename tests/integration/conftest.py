"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.sms_server import SmsServer, sms_server


@pytest.fixture(scope="module")
def sms() -> Iterator[SmsServer]:
    """The local stand-in for a paid SMS provider, one per test module."""
    with sms_server() as server:
        yield server
