"""The CLI's side of the API: call records as a table, the dialer, opt-outs."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

import aiohttp

from callkeeper.config.model import Secret
from callkeeper.records import REASON_WORDS, Reason, parse_utc

COLUMNS = (
    "STARTED",
    "LINE",
    "CALLER",
    "DIALED",
    "OUTCOME",
    "REASON",
    "SHORT",
    "ANSWERED_BY",
    "DURATION",
    "WHY",
)


class ApiClientError(Exception):
    """The daemon could not be reached or refused the request; the message is for the operator."""


async def fetch_calls(  # noqa: PLR0917 - the CLI passes its options in this order
    base_url: str,
    token: str | None,
    limit: int = 50,
    since: datetime | str | None = None,
    line: str | None = None,
    outcome: str | None = None,
    *,
    timeout_seconds: float = 10.0,
) -> list[dict[str, Any]]:
    """The calls as the API returns them (`CallRecord.to_json()`), newest first.

    `since` is a datetime (naive means UTC) or ISO 8601 text as the operator typed it, which the daemon
    validates. Raises `ApiClientError`.
    """
    params: dict[str, str] = {"limit": str(limit)}
    if isinstance(since, datetime):
        aware = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        params["since"] = aware.astimezone(UTC).isoformat()
    elif since is not None:
        params["since"] = since
    if line is not None:
        params["line"] = line
    if outcome is not None:
        params["outcome"] = outcome
    body = await _call_api("GET", base_url, "/api/v1/calls", token, timeout_seconds, params=params)
    if not isinstance(body, dict) or not isinstance(body.get("calls"), list):
        raise ApiClientError("callkeeper answered something that is not a call list")
    return [call for call in body["calls"] if isinstance(call, dict)]


async def dial_contact(
    base_url: str, token: str | None, *, contact: str, line: str, user: str | None, ring_group: str | None
) -> str:
    """Starts a progressive-dialer call; returns its id. Raises `ApiClientError`."""
    request = {"contact": contact, "line": line, "user": user, "ring_group": ring_group}
    body = await _call_api(
        "POST",
        base_url,
        "/api/v1/dialer/calls",
        token,
        10.0,
        json={key: value for key, value in request.items() if value is not None},
        expect=202,
    )
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ApiClientError("callkeeper answered something that is not a call id")
    return str(body["id"])


async def change_opt_out(base_url: str, token: str | None, number: str, *, opted_out: bool) -> dict[str, Any]:
    """Opts `number` out of follow-up texts (or back in); returns its state. Raises `ApiClientError`."""
    path = "/api/v1/opt-outs/" + quote(number, safe="")
    body = await _call_api("PUT" if opted_out else "DELETE", base_url, path, token, 10.0)
    if not isinstance(body, dict):
        raise ApiClientError("callkeeper answered something that is not an opt-out state")
    return body


async def _call_api(
    method: str,
    base_url: str,
    path: str,
    token: str | None,
    timeout_seconds: float,
    *,
    params: dict[str, str] | None = None,
    json: dict[str, str] | None = None,
    expect: int = 200,
) -> Any:
    headers = {}
    if token is not None:
        secret = token.value if isinstance(token, Secret) else token
        headers["Authorization"] = f"Bearer {secret}"
    url = base_url.rstrip("/") + path
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as session,
            session.request(method, url, params=params, json=json, headers=headers) as response,
        ):
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ApiClientError(
            f"cannot reach callkeeper at {base_url}: {error or type(error).__name__}"
        ) from None
    if status != expect:
        if isinstance(body, dict) and "error" in body:
            detail = f" ({body['detail']})" if body.get("detail") is not None else ""
            raise ApiClientError(f"callkeeper answered {status}: {body['error']}{detail}")
        raise ApiClientError(f"callkeeper answered {status}")
    return body


def _cell(value: Any) -> str:
    """Printable text only: caller ids come from the outside world and must not drive the terminal."""
    if value is None or value == "":
        return "-"
    return "".join(char if char.isprintable() else "?" for char in str(value))


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


def _duration(started: datetime | None, ended: datetime | None) -> str:
    if started is None or ended is None:
        return "-"
    seconds = max(0, round((ended - started).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


def _row(call: dict[str, Any], tz: tzinfo | None) -> tuple[str, ...]:
    started = _moment(call.get("started_at"))
    ended = _moment(call.get("ended_at"))
    return (
        started.astimezone(tz).strftime("%Y-%m-%d %H:%M") if started else "-",
        _cell(call.get("line")),
        _cell(call.get("caller")),
        _cell(call.get("dialed")),
        _cell(call.get("outcome") or "in progress"),
        _cell(call.get("reason")),
        "yes" if call.get("short") is True else "-",
        _cell(call.get("answered_by")),
        _duration(started, ended),
        _why(call.get("reason")),
    )


def _why(reason: Any) -> str:
    try:
        return REASON_WORDS[Reason(reason)]
    except ValueError:
        return "-"


def format_calls_table(calls: list[dict[str, Any]], tz: tzinfo | None = None) -> str:
    """A fixed-width table, one call a line, start times in `tz` (default: this machine's local time)."""
    if not calls:
        return "no calls\n"
    rows = [COLUMNS, *(_row(call, tz) for call in calls)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return "\n".join(lines) + "\n"
