"""The HTTP API over in-memory fakes of the store and the daemon: every endpoint, auth and bad input."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from callkeeper.api import server
from callkeeper.api.inbound_sms import twilio_signature, webhook_signature
from callkeeper.api.openapi import openapi_document
from callkeeper.api.server import ApiConfigError, build_app, is_loopback, start_api
from callkeeper.config.model import HttpConfig, Secret
from callkeeper.inbox.service import InboxService
from tests.unit.test_api_fakes import AUTH, HTTP, T0, TOKEN, FakeControl, FakeHistory, fakes, open_inbox

Client = TestClient[web.Request, web.Application]

PROTECTED = [
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/calls"),
    ("GET", "/api/v1/calls/1714982400.1"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/alice/presence"),
    ("PUT", "/api/v1/users/alice/presence"),
    ("GET", "/api/v1/lines"),
    ("PUT", "/api/v1/lines/sales/override"),
    ("GET", "/api/v1/queues"),
    ("GET", "/api/v1/opt-outs"),
    ("GET", "/api/v1/opt-outs/+4930999999"),
    ("PUT", "/api/v1/opt-outs/+4930999999"),
    ("DELETE", "/api/v1/opt-outs/+4930999999"),
    ("GET", "/api/v1/inbox"),
    ("GET", "/api/v1/inbox/1714982400.1"),
    ("POST", "/api/v1/inbox/1714982400.1/handled"),
    ("POST", "/api/v1/inbox/1714982400.1/callback"),
    ("GET", "/api/v1/calls/1714982400.1/voicemail"),
    ("GET", "/api/v1/reports/daily"),
]


@pytest.fixture
def history() -> FakeHistory:
    return fakes()[0]


@pytest.fixture
def control() -> FakeControl:
    return fakes()[1]


@pytest.fixture
async def inbox(control: FakeControl) -> AsyncIterator[InboxService]:
    service = await open_inbox(control)
    yield service
    await service.store.close()


@pytest.fixture
async def client(history: FakeHistory, control: FakeControl, inbox: InboxService) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(history, control, HTTP, inbox))) as test_client:
        yield test_client


async def _json(client: Client, method: str, path: str, status: int, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", AUTH)
    async with client.request(method, path, **kwargs) as response:
        body = await response.json()
        assert response.status == status, body
        assert response.content_type == "application/json"
        return body


async def _error(client: Client, method: str, path: str, status: int, **kwargs: Any) -> str:
    body = await _json(client, method, path, status, **kwargs)
    assert set(body) == {"error", "detail"}
    assert isinstance(body["error"], str)
    return body["error"]


# --- health, auth, routing


async def test_healthz_needs_no_token(client: Client) -> None:
    assert await _json(client, "GET", "/healthz", 200, headers={}) == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_other_endpoint_needs_the_token(client: Client, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        async with client.request(method, path, headers=headers) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await response.json())["error"] in ("authentication required", "invalid token")


async def test_the_scheme_is_case_insensitive(client: Client) -> None:
    await _json(client, "GET", "/api/v1/users", 200, headers={"Authorization": f"bearer {TOKEN}"})


async def test_a_token_prefix_is_not_enough(client: Client) -> None:
    await _error(client, "GET", "/api/v1/users", 401, headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
    await _error(client, "GET", "/api/v1/users", 401, headers={"Authorization": f"Bearer {TOKEN}x"})
    await _error(client, "GET", "/api/v1/users", 401, headers={"Authorization": "Bearer ü"})


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "http.token is required"), ("", "at least 32"), (TOKEN[:31], "at least 32")],
)
def test_a_missing_or_short_token_is_refused(
    history: FakeHistory, control: FakeControl, token: str | None, message: str
) -> None:
    with pytest.raises(ApiConfigError, match=message):
        build_app(history, control, HttpConfig(token=None if token is None else Secret(token)))


@pytest.mark.parametrize(
    ("listen", "names", "host", "allowed"),
    [
        ("127.0.0.1", (), "127.0.0.1:8090", True),
        ("127.0.0.1", (), "localhost:8090", True),
        ("127.0.0.1", (), "LOCALHOST", True),
        ("127.0.0.1", (), "[::1]:8090", True),
        ("127.0.0.1", (), "attacker.example:8090", False),
        ("127.0.0.1", (), "192.0.2.7:8090", False),
        ("127.0.0.1", (), "", False),
        ("127.0.0.1", ("pbx.example.com",), "pbx.example.com:8090", True),
        ("127.0.0.1", ("pbx.example.com",), "pbx.example.com.attacker.example", False),
        ("0.0.0.0", (), "192.0.2.7:8090", True),
        ("0.0.0.0", (), "localhost:8090", False),
        ("0.0.0.0", (), "rebound.attacker.example", False),
        ("::", (), "[2001:db8::1]:8090", True),
        ("192.0.2.7", (), "192.0.2.7", True),
        ("192.0.2.7", (), "192.0.2.8", False),
        ("pbx.example.com", (), "pbx.example.com:8090", True),
        ("pbx.example.com", (), "192.0.2.7", False),
    ],
)
def test_the_host_header_must_name_this_server(
    listen: str, names: tuple[str, ...], host: str, allowed: bool
) -> None:
    assert server.allowed_host(HttpConfig(host=listen, token=Secret(TOKEN), names=names), host) is allowed


def test_the_public_url_names_this_server() -> None:
    http = HttpConfig(token=Secret(TOKEN), public_url="https://pbx.example.com/callkeeper")
    assert server.allowed_host(http, "pbx.example.com")
    assert not server.allowed_host(http, "example.com")


async def test_a_foreign_host_is_refused_even_with_the_token(client: Client) -> None:
    """A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own name."""
    headers = {**AUTH, "Host": "rebound.attacker.example"}
    with capture_logs() as logs:
        assert await _error(client, "GET", "/api/v1/calls", 421, headers=headers) == "unknown host"
        assert await _error(client, "POST", "/api/v1/dialer/calls", 421, headers=headers) == "unknown host"
    assert [entry["event"] for entry in logs if entry["log_level"] != "debug"] == ["http_unknown_host"] * 2
    await _json(client, "GET", "/healthz", 200, headers={"Host": "rebound.attacker.example"})


async def test_the_token_never_reaches_a_log_line(client: Client, history: FakeHistory) -> None:
    history.broken = True
    with capture_logs() as logs:
        async with client.get("/metrics", headers=AUTH) as response:
            assert response.status == 200
        await _json(client, "GET", "/readyz", 503)
        await _json(client, "GET", "/api/v1/calls?limit=1", 200)
        await _error(client, "GET", "/api/v1/calls", 401, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert logs
    assert TOKEN not in repr(logs)
    assert "Authorization" not in repr(logs)


async def test_unknown_paths_are_401_then_404(client: Client) -> None:
    await _error(client, "GET", "/api/v1/nothing", 401, headers={})
    assert await _error(client, "GET", "/api/v1/nothing", 404) == "not found"


async def test_a_wrong_method_is_405_with_allow(client: Client) -> None:
    async with client.post("/api/v1/calls", headers=AUTH) as response:
        assert response.status == 405
        assert "GET" in response.headers["Allow"]
        assert (await response.json())["error"] == "method not allowed"


@pytest.mark.parametrize(
    "query", ["?x=1", "?limit=5&limit=6", "?outcom=missed", "?line=sales&line=support", "?since"]
)
async def test_unknown_or_repeated_query_parameters_are_400(client: Client, query: str) -> None:
    await _error(client, "GET", f"/api/v1/calls{query}", 400)


@pytest.mark.parametrize("path", ["/metrics", "/api/v1/users", "/api/v1/opt-outs", "/readyz", "/healthz"])
async def test_endpoints_without_parameters_refuse_any(client: Client, path: str) -> None:
    await _error(client, "GET", f"{path}?limit=5", 400)


async def test_an_unexpected_failure_is_a_json_500_without_details(
    client: Client, history: FakeHistory
) -> None:
    async def failing(call_id: str) -> None:
        raise RuntimeError("secret internals")

    history.get_call = failing  # type: ignore[method-assign]
    with capture_logs() as logs:
        body = await _json(client, "GET", "/api/v1/calls/1714982400.1", 500)
    assert body == {"error": "internal error", "detail": None}
    assert logs[0]["event"] == "api_handler_failed"


# --- readiness


async def test_ready_when_everything_is(client: Client) -> None:
    assert await _json(client, "GET", "/readyz", 200) == {
        "status": "ready",
        "checks": {"ari": True, "config": True, "store": True},
        "detail": {"missing_sounds": {}},
    }


async def test_missing_sounds_are_named_but_not_fatal(client: Client, control: FakeControl) -> None:
    control.sounds_missing = {"callkeeper/welcome": ["lines.main.welcome"]}
    body = await _json(client, "GET", "/readyz", 200)
    assert body["detail"] == {"missing_sounds": {"callkeeper/welcome": ["lines.main.welcome"]}}


@pytest.mark.parametrize("failing", ["ari", "config", "store"])
async def test_not_ready_names_the_failed_check(
    client: Client, history: FakeHistory, control: FakeControl, failing: str
) -> None:
    control.ari = failing != "ari"
    control.config = failing != "config"
    history.is_healthy = failing != "store"
    body = await _json(client, "GET", "/readyz", 503)
    assert body["status"] == "not ready"
    assert [name for name, ok in body["checks"].items() if not ok] == [failing]


async def test_a_broken_store_is_not_ready(client: Client, history: FakeHistory) -> None:
    history.broken = True
    body = await _json(client, "GET", "/readyz", 503)
    assert body["checks"]["store"] is False


async def test_a_hanging_store_is_not_ready(
    client: Client, history: FakeHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hang() -> bool:
        await asyncio.sleep(60)
        return True

    history.healthy = hang  # type: ignore[method-assign]
    monkeypatch.setattr(server, "STORE_CHECK_SECONDS", 0.05)
    body = await _json(client, "GET", "/readyz", 503)
    assert body["checks"] == {"ari": True, "config": True, "store": False}


# --- metrics (the format itself is tested in test_api_metrics)


async def test_metrics_are_prometheus_text(client: Client) -> None:
    async with client.get("/metrics", headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await response.text()
    assert 'callkeeper_calls_total{line="sales",outcome="missed",reason="ring_group_no_answer"} 3\n' in text
    assert 'callkeeper_outbox_depth{status="pending"} 2\n' in text
    assert 'callkeeper_outbox_depth{status="held"} 0\n' in text


async def test_metrics_survive_a_broken_store(client: Client, history: FakeHistory) -> None:
    history.broken = True
    async with client.get("/metrics", headers=AUTH) as response:
        assert response.status == 200
        text = await response.text()
    assert "callkeeper_outbox_depth" not in text
    assert "callkeeper_calls_in_progress 2\n" in text


# --- calls


async def test_calls_newest_first_with_the_default_limit(client: Client, history: FakeHistory) -> None:
    body = await _json(client, "GET", "/api/v1/calls", 200)
    assert [c["id"] for c in body["calls"]] == ["1714982400.3", "1714982400.2", "1714982400.1"]
    assert body["calls"][0] == history.calls["1714982400.3"].to_json()
    assert history.queries == [{"limit": 50, "since": None, "line": None, "outcome": None}]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2024-05-06T08:05:00", datetime(2024, 5, 6, 8, 5, tzinfo=UTC)),
        ("2024-05-06T08:05:00Z", datetime(2024, 5, 6, 8, 5, tzinfo=UTC)),
        ("2024-05-06t08:05:00z", datetime(2024, 5, 6, 8, 5, tzinfo=UTC)),
        ("2024-05-06T10:05:00%2B02:00", datetime(2024, 5, 6, 8, 5, tzinfo=UTC)),
        ("2024-05-06", datetime(2024, 5, 6, tzinfo=UTC)),
    ],
)
async def test_since_is_iso_8601_and_naive_means_utc(
    client: Client, history: FakeHistory, since: str, expected: datetime
) -> None:
    await _json(client, "GET", f"/api/v1/calls?since={since}", 200)
    passed = history.queries[-1]["since"]
    assert passed == expected
    assert passed.utcoffset().total_seconds() == 0


async def test_calls_filters_reach_the_store(client: Client, history: FakeHistory) -> None:
    body = await _json(
        client, "GET", "/api/v1/calls?limit=1000&line=sales&outcome=answered&since=2024-05-06", 200
    )
    assert [c["id"] for c in body["calls"]] == ["1714982400.3"]
    assert history.queries[-1] == {
        "limit": 1000,
        "since": datetime(2024, 5, 6, tzinfo=UTC),
        "line": "sales",
        "outcome": "answered",
    }
    body = await _json(client, "GET", "/api/v1/calls?limit=1", 200)
    assert len(body["calls"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=1.5",
        "limit=abc",
        "limit=",
        "limit=%205",
        "limit=1_0",
        "limit=%EF%BC%95",
        "limit=99999999999999999999",
        "since=yesterday",
        "since=",
        "since=2024-13-01",
        "since=0001-01-01T00:00:00%2B01:00",
        "since=9999-12-31T23:59:59-01:00",
        "since=2024-05-06T10:05:00+02:00",
        "since=2024-05-06T10:05:00%2B24:00",
        "outcome=lost",
        "outcome=",
        "outcome=MISSED",
        "line=",
        f"line={'x' * 129}",
    ],
)
async def test_bad_call_queries_are_400(client: Client, history: FakeHistory, query: str) -> None:
    error = await _error(client, "GET", f"/api/v1/calls?{query}", 400)
    assert error.startswith("invalid ")
    assert history.queries == []


async def test_one_call(client: Client, history: FakeHistory) -> None:
    body = await _json(client, "GET", "/api/v1/calls/1714982400.3", 200)
    assert body == history.calls["1714982400.3"].to_json()


async def test_an_unknown_call_is_404(client: Client) -> None:
    assert await _error(client, "GET", "/api/v1/calls/1714982400.99", 404) == "unknown call"


@pytest.mark.parametrize("call_id", ["a%20b", "x" * 257, "%00", "%C3%A4", "a%2Fb"])
async def test_a_malformed_call_id_is_400(client: Client, call_id: str) -> None:
    assert await _error(client, "GET", f"/api/v1/calls/{call_id}", 400) == "invalid call id"


# --- users and presence


async def test_users(client: Client) -> None:
    assert await _json(client, "GET", "/api/v1/users", 200) == {
        "users": [{"name": "alice", "presence": "available"}, {"name": "bob", "presence": "busy"}]
    }


async def test_presence_of_one_user(client: Client) -> None:
    assert await _json(client, "GET", "/api/v1/users/bob/presence", 200) == {
        "name": "bob",
        "presence": "busy",
    }


async def test_set_away_and_back(client: Client, control: FakeControl) -> None:
    path = "/api/v1/users/alice/presence"
    assert await _json(client, "PUT", path, 200, json={"presence": "away"}) == {
        "name": "alice",
        "presence": "away",
    }
    body = await _json(client, "PUT", path, 200, json={"presence": "dnd"})
    assert body == {"name": "alice", "presence": "dnd"}
    body = await _json(client, "PUT", path, 200, json={"presence": "available"})
    assert body == {"name": "alice", "presence": "available"}
    assert control.presence_changes == [("alice", "away"), ("alice", "dnd"), ("alice", "available")]


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_an_unknown_user_is_404(client: Client, control: FakeControl, method: str) -> None:
    error = await _error(client, method, "/api/v1/users/carol/presence", 404, json={"presence": "away"})
    assert error == "unknown user"
    await _error(client, method, f"/api/v1/users/{'a' * 200}/presence", 404, json={"presence": "away"})
    assert control.presence_changes == []


BAD_BODIES: list[tuple[dict[str, Any], int, str]] = [
    (
        {"data": b'{"presence": "away"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported media type",
    ),
    ({"data": b'{"presence": "away"}'}, 415, "unsupported media type"),
    ({"data": b'{"presence": ', "headers": {"Content-Type": "application/json"}}, 400, "invalid JSON"),
    ({"data": b"\xff\xfe\xfa", "headers": {"Content-Type": "application/json"}}, 400, "invalid JSON"),
    ({"data": b"[" * 50_000, "headers": {"Content-Type": "application/json"}}, 400, "invalid JSON"),
    ({"data": b"", "headers": {"Content-Type": "application/json"}}, 400, "invalid JSON"),
    ({"json": ["away"]}, 422, "invalid body"),
    ({"json": "away"}, 422, "invalid body"),
    ({"data": b"null", "headers": {"Content-Type": "application/json"}}, 422, "invalid body"),
    ({"json": {}}, 422, "invalid presence"),
    ({"json": {"presence": "away", "until": "5pm"}}, 422, "unknown fields"),
    ({"json": {"presence": "busy"}}, 422, "invalid presence"),
    ({"json": {"presence": "offline"}}, 422, "invalid presence"),
    ({"json": {"presence": ["away"]}}, 422, "invalid presence"),
    ({"json": {"presence": {"a": 1}}}, 422, "invalid presence"),
    ({"json": {"presence": None}}, 422, "invalid presence"),
    ({"json": {"presence": "away", "x": "y" * 70_000}}, 413, "request entity too large"),
]


@pytest.mark.parametrize(("kwargs", "status", "error"), BAD_BODIES)
async def test_bad_presence_bodies_are_4xx(
    client: Client, control: FakeControl, kwargs: dict[str, Any], status: int, error: str
) -> None:
    kwargs = {**kwargs, "headers": {**AUTH, **kwargs.get("headers", {})}}
    assert await _error(client, "PUT", "/api/v1/users/alice/presence", status, **kwargs) == error
    assert control.presence_changes == []


async def test_json_with_a_charset_is_json(client: Client) -> None:
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    data = json.dumps({"presence": "away"}).encode()
    await _json(client, "PUT", "/api/v1/users/alice/presence", 200, headers=headers, data=data)


# --- lines


async def test_lines(client: Client) -> None:
    assert await _json(client, "GET", "/api/v1/lines", 200) == {
        "lines": [{"name": "sales", "override": "auto"}, {"name": "support", "override": "closed"}]
    }


@pytest.mark.parametrize("mode", ["open", "closed", "auto"])
async def test_override_a_line(client: Client, control: FakeControl, mode: str) -> None:
    body = await _json(client, "PUT", "/api/v1/lines/sales/override", 200, json={"mode": mode})
    assert body == {"name": "sales", "override": mode}
    assert control.override_changes == [("sales", mode)]


async def test_override_an_unknown_line_is_404(client: Client, control: FakeControl) -> None:
    await _error(client, "PUT", "/api/v1/lines/nowhere/override", 404, json={"mode": "open"})
    assert control.override_changes == []


@pytest.mark.parametrize(
    "body", [{"mode": "OPEN"}, {"mode": 1}, {"mode": "open", "until": 1}, {"override": "open"}]
)
async def test_override_bad_bodies_are_422(
    client: Client, control: FakeControl, body: dict[str, Any]
) -> None:
    await _error(client, "PUT", "/api/v1/lines/sales/override", 422, json=body)
    assert control.override_changes == []


# --- queues


async def test_queues(client: Client) -> None:
    assert await _json(client, "GET", "/api/v1/queues", 200) == {
        "queues": {"support": [{"call_id": "1714982400.7", "caller": "+4930111111", "waiting_seconds": 12.5}]}
    }


# --- opt-outs


async def test_opt_out_list(client: Client) -> None:
    assert await _json(client, "GET", "/api/v1/opt-outs", 200) == {
        "opt_outs": [{"number": "+4930999999", "source": "sms_stop", "at": "2024-05-06T08:00:00Z"}]
    }


async def test_opt_out_state(client: Client) -> None:
    assert await _json(client, "GET", "/api/v1/opt-outs/+4930999999", 200) == {
        "number": "+4930999999",
        "opted_out": True,
        "source": "sms_stop",
        "at": "2024-05-06T08:00:00Z",
    }
    assert await _json(client, "GET", "/api/v1/opt-outs/%2B4930555555", 200) == {
        "number": "+4930555555",
        "opted_out": False,
        "source": None,
        "at": None,
    }


async def test_opt_out_and_back_in(client: Client, history: FakeHistory) -> None:
    body = await _json(client, "PUT", "/api/v1/opt-outs/+4930555555", 200)
    assert body["opted_out"] is True
    assert body["source"] == "api"
    number, opted_out, source, now = history.opt_out_calls[0]
    assert (number, opted_out, source) == ("+4930555555", True, "api")
    assert now.utcoffset() is not None
    assert now >= T0
    body = await _json(client, "DELETE", "/api/v1/opt-outs/+4930555555", 200)
    assert body == {"number": "+4930555555", "opted_out": False, "source": None, "at": None}
    assert history.opt_out_calls[1][:3] == ("+4930555555", False, "api")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "number", ["4930555555", "+04930555555", "+1", "+1234567890123456", "+49 30", "abc", "%2B"]
)
async def test_a_number_that_is_not_e164_is_400(
    client: Client, history: FakeHistory, method: str, number: str
) -> None:
    assert await _error(client, method, f"/api/v1/opt-outs/{number}", 400) == "invalid number"
    assert history.opt_out_calls == []


# --- the OpenAPI document


async def test_openapi_document_is_served(client: Client) -> None:
    body = await _json(client, "GET", "/api/v1/openapi.json", 200)
    assert body == openapi_document()
    assert body["openapi"].startswith("3.1")


def test_openapi_describes_exactly_the_routes(
    history: FakeHistory, control: FakeControl, inbox: InboxService
) -> None:
    app = build_app(history, control, HTTP, inbox)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented == routes


def test_openapi_documents_the_unknown_host_answer_wherever_it_is_given() -> None:
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                assert ("421" in operation["responses"]) == (path != "/healthz"), (method, path)


def test_openapi_document_copies_are_independent() -> None:
    openapi_document()["paths"].clear()
    assert openapi_document()["paths"]


# --- starting and binding


async def test_start_api_refuses_to_serve_without_a_token(history: FakeHistory, control: FakeControl) -> None:
    with pytest.raises(ApiConfigError, match=r"http\.token is required"):
        await start_api(HttpConfig(host="127.0.0.1", port=0), history, control)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_start_api_serves_on_loopback(history: FakeHistory, control: FakeControl) -> None:
    runner = await start_api(HttpConfig(host="127.0.0.1", port=0, token=Secret(TOKEN)), history, control)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://{host}:{port}/api/v1/users", headers=AUTH) as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


async def test_start_api_reports_a_busy_port(history: FakeHistory, control: FakeControl) -> None:
    first = await start_api(HttpConfig(host="127.0.0.1", port=0, token=Secret(TOKEN)), history, control)
    try:
        port = first.addresses[0][1]
        with pytest.raises(OSError):
            await start_api(HttpConfig(host="127.0.0.1", port=port, token=Secret(TOKEN)), history, control)
    finally:
        await first.cleanup()


async def test_dialer_starts_a_call_and_validates_its_request() -> None:
    history, control = fakes()
    async with TestClient(TestServer(build_app(history, control, HTTP)), headers=AUTH) as client:
        ok = await client.post(
            "/api/v1/dialer/calls", json={"contact": "+14155550123", "line": "sales", "user": "alice"}
        )
        assert ok.status == 202 and (await ok.json()) == {"id": "out-1"}
        busy = await client.post(
            "/api/v1/dialer/calls", json={"contact": "+14155550123", "line": "sales", "user": "bob"}
        )
        assert busy.status == 409
        for bad in (
            {"contact": "0800 CALL ME", "line": "sales", "user": "alice"},
            {"contact": "+14155550123", "line": "sales"},
            {"contact": "+14155550123", "line": "sales", "user": "alice", "ring_group": "x"},
            {"contact": "+14155550123", "line": "sales", "user": "alice", "extra": "1"},
            {"contact": "+14155550123", "line": 7, "user": "alice"},
        ):
            response = await client.post("/api/v1/dialer/calls", json=bad)
            assert response.status == 422, bad
    assert control.dialed == [("+14155550123", "sales", "alice", None)]


async def test_stop_and_start_replies_from_the_provider_webhooks() -> None:
    history, control = fakes()
    async with TestClient(TestServer(build_app(history, control, HTTP))) as client:
        form = {"From": "+14155550111", "To": "+12125550100", "Body": " stop please", "MessageSid": "SM1"}
        url = str(client.make_url("/api/v1/sms/twilio/inbound"))
        signature = twilio_signature("twilio-auth", url, list(form.items()))
        taken = await client.post(
            "/api/v1/sms/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature}
        )
        assert taken.status == 200 and "<Response>" in await taken.text()
        assert ("+14155550111", True, "sms:twilio") in [call[:3] for call in history.opt_out_calls]
        forged = await client.post(
            "/api/v1/sms/twilio/inbound", data=form, headers={"X-Twilio-Signature": "x"}
        )
        assert forged.status == 403
        body = json.dumps({"from": "+14155550111", "body": "START"}).encode()
        timestamp = str(int(time.time()))
        started = await client.post(
            "/api/v1/sms/hook/inbound",
            data=body,
            headers={
                "X-Callkeeper-Signature": webhook_signature("hook-secret", body, timestamp),
                "X-Callkeeper-Timestamp": timestamp,
            },
        )
        assert started.status == 200 and (await started.json()) == {"opted_out": False}
        assert "+14155550111" not in [o.number for o in await history.list_opt_outs()]
        assert (await client.post("/api/v1/sms/nope/inbound", data=b"")).status == 404
