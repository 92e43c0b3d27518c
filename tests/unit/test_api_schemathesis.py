"""Requests generated from the OpenAPI document against a real local server: never a 500, and every
answer matches the document."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

from callkeeper.api.openapi import openapi_document
from callkeeper.api.server import start_api
from callkeeper.config.model import HttpConfig, Secret
from tests.unit.test_api_fakes import AUTH, TOKEN, fakes, open_inbox


def _document_with_known_names() -> dict[str, Any]:
    """The document, with names the fakes know as examples: random names would only ever reach the 404s."""
    document = openapi_document()
    examples = {
        "/api/v1/users/{name}/presence": "alice",
        "/api/v1/lines/{name}/override": "sales",
        "/api/v1/opt-outs/{number}": "+4930999999",
        "/api/v1/calls/{call_id}": "1714982400.3",
    }
    for path, example in examples.items():
        item = document["paths"][path]
        for parameter in item.get("parameters", []) + item.get("get", {}).get("parameters", []):
            parameter["example"] = example
    return document


schema = schemathesis.openapi.from_dict(_document_with_known_names())


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The API on 127.0.0.1, served by an event loop of its own in a thread: schemathesis blocks."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    history, control = fakes()
    inbox = asyncio.run_coroutine_threadsafe(open_inbox(control), loop).result(10)
    http = HttpConfig(host="127.0.0.1", port=0, token=Secret(TOKEN))
    runner = asyncio.run_coroutine_threadsafe(start_api(http, history, control, inbox), loop).result(10)
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        asyncio.run_coroutine_threadsafe(inbox.store.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@schema.parametrize()
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case: Case[Any], base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers=AUTH)
