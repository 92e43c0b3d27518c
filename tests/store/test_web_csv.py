"""The report page's CSV read from a real store a page at a time: every call of the days once, calls
that share a moment across a page boundary too."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from bench.web_inbox import T0, missed_call

from callkeeper.store.base import Store
from callkeeper.web import app as web_app
from tests.store.test_web_two_hosts import host_app
from tests.web.conftest import sign_in


async def test_the_csv_holds_every_call_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_app, "CSV_PAGE", 10)
    calls = [replace(missed_call(index), line="Sales") for index in range(45)]
    # Three calls at one moment, where a page ends.
    calls[25:28] = [replace(call, started_at=calls[25].started_at) for call in calls[25:28]]
    calls.append(replace(missed_call(99), line="Sales", started_at=T0 - timedelta(days=30)))  # another day
    for call in calls:
        await store.save_call(call)
    async with TestClient(TestServer(host_app(store))) as client:
        await sign_in(client)
        day = T0.date().isoformat()
        response = await client.get(f"/reports/calls.csv?line=Sales&from={day}&to={day}")
        assert response.status == 200
        rows = (await response.text()).splitlines()
    assert rows[0].startswith("id,direction,line")
    assert sorted(row.split(",")[0] for row in rows[1:]) == sorted(call.id for call in calls[:45])
