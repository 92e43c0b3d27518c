"""The inbox page in headless Chromium against the real daemon and the sandbox Asterisk.

One signed-in page stays open the whole time, as at a reception desk: a real missed call appears in it
without a reload, its voicemail plays, "Call back" rings the user and then the caller, the item leaves the
page once the caller answered; a second caller's answered call resolves their item; the page reconnects
after a daemon restart; a POST without the CSRF token is refused; signing out ends the session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, cast

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from callkeeper.web.passwords import hash_password
from tests.conftest import Sandbox
from tests.integration.daemon import RunningDaemon, running_daemon
from tests.integration.sandbox_calls import wait_until
from tests.integration.test_inbox import CONFIG as INBOX
from tests.integration.test_inbox import FRONT, LEAVES_A_MESSAGE, MAIN, assert_alice_reached
from tests.web.browser import chromium, click, sign_in

PASSWORD = "front desk 2026"
APPEARS_WITHIN = 2.0
# The lines, ring groups and users of test_inbox.py; alice may sign in to the page.
USERS = cast("dict[str, dict[str, str]]", INBOX["users"])
LINES = cast("dict[str, dict[str, Any]]", INBOX["lines"])
CONFIG = {
    **INBOX,
    "users": {**USERS, "alice": {**USERS["alice"], "web_password_hash": hash_password(PASSWORD)}},
    # No follow-up texts here (test_inbox.py sends them through its own SMS server).
    "lines": {name: line for name, line in LINES.items() if "followup_text" not in line},
}


@pytest.fixture(scope="module")
def daemon(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with running_daemon(sandbox, tmp_path_factory.mktemp("inbox-web"), CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def rows(driver: WebDriver) -> list[str]:
    keys = driver.execute_script(
        "return [...document.querySelectorAll('tr[data-key]')].map(r => r.dataset.key)"
    )
    return [str(key) for key in keys]


def live(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return document.getElementById('live')?.dataset.state === 'live'"))


async def item_state(daemon: RunningDaemon, call_id: str) -> dict[str, Any]:
    status, item = await daemon.api("GET", f"/api/v1/inbox/{call_id}")
    assert status == 200, item
    assert isinstance(item, dict)
    return item


async def appears(daemon: RunningDaemon, driver: WebDriver, call_id: str, key: str) -> float:
    """Seconds from the call's verdict (as the API shows it) to its row in the open page."""
    decided: float | None = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if decided is None and (record := await daemon.call(call_id)) and record["outcome"]:
            decided = time.monotonic()
        if key in rows(driver):
            assert decided is not None, "the row came before the verdict"
            return time.monotonic() - decided
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} never appeared in the open page:\n{daemon.log[-3000:]}")


async def test_a_receptionist_works_the_inbox_in_the_browser(
    daemon: RunningDaemon, browser: WebDriver
) -> None:
    url = daemon.base_url
    browser.get(f"{url}/")
    assert browser.current_url == f"{url}/login"
    sign_in(browser, url, "alice", PASSWORD)
    await wait_until(lambda: live(browser), within=5, what="the page live")
    assert "All caught up" in browser.page_source

    # A real missed call with a voicemail appears in the open page, without a reload.
    placed = await daemon.place(MAIN, LEAVES_A_MESSAGE, caller_id="+14155550100")
    seconds = await appears(daemon, browser, placed.inbound, "+14155550100|main")
    print(f"the missed call appeared {seconds:.2f} s after its verdict")
    assert seconds < APPEARS_WITHIN
    record = await daemon.verdict(placed)
    assert (record["outcome"], record["reason"], record["voicemail"]["left"]) == (
        "missed",
        "ring_group_no_answer",
        True,
    )

    # Its voicemail plays in the browser.
    click(browser, 'tr[data-key="+14155550100|main"] td.caller a')
    await wait_until(
        lambda: browser.execute_script(
            "const a = document.getElementById('voicemail-audio'); return a.readyState >= 1 && a.duration > 0"
        ),
        within=10,
        what="the voicemail's duration",
    )
    duration = float(browser.execute_script("return document.getElementById('voicemail-audio').duration"))
    assert duration > 1
    browser.execute_script("document.getElementById('voicemail-audio').play()")
    await wait_until(
        lambda: browser.execute_script("return document.getElementById('voicemail-audio').currentTime > 0"),
        within=5,
        what="the voicemail playing",
    )

    # A POST without the CSRF token is refused, from the signed-in page itself.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/calls/{record['id']}/handled',"
        " {method: 'POST', body: new URLSearchParams({note: 'x'})})"
        ".then(r => done(r.status))"
    )
    assert status == 403
    assert (await item_state(daemon, record["id"]))["state"] == "open"

    # "Call back" rings alice, then the caller; once the caller answered, the item is handled.
    click(browser, "#actions form[action$='/callback'] button")
    await wait_until(
        lambda: "Ringing your phone" in browser.find_element(By.ID, "toast").text, within=5, what="the toast"
    )

    deadline = time.monotonic() + 30
    while (item := await item_state(daemon, record["id"]))["state"] != "handled":
        assert time.monotonic() < deadline, f"the callback did not handle the item: {item}"
        await asyncio.sleep(0.1)
    assert item["handled_by"] == "alice"
    await assert_alice_reached(daemon, item["resolved_by"], "+14155550100")
    await wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#actions .handled-box"),
        within=5,
        what="the open call page showing the item handled",
    )

    # A second caller: missed, in the page; their answered call takes the row away by itself.
    browser.get(f"{url}/")
    await wait_until(lambda: live(browser), within=5, what="the page live")
    missed = await daemon.place(FRONT, "wait:1", caller_id="+14155550177")
    await appears(daemon, browser, missed.inbound, "+14155550177|front")
    answered = await daemon.verdict(await daemon.place(FRONT, "wait:8", caller_id="+14155550177"))
    assert answered["outcome"] == "answered", answered
    await wait_until(
        lambda: "+14155550177|front" not in rows(browser),
        within=10,
        what="the resolved row gone from the page",
    )
    assert (await item_state(daemon, missed.inbound))["resolved_by"] == answered["id"]

    # The daemon restarts: the page reconnects by itself and stays live.
    daemon.stop()
    await wait_until(lambda: not live(browser), within=5, what="the page noticing the daemon gone")
    daemon.start()
    await wait_until(lambda: live(browser), within=10, what="the page live again")
    again = await daemon.place(FRONT, "wait:1", caller_id="+14155550166")
    await appears(daemon, browser, again.inbound, "+14155550166|front")

    # Signing out ends the session: the pages send to the sign-in again.
    session_cookie = browser.get_cookie("callkeeper_session")
    assert (
        session_cookie is not None and session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"
    )
    click(browser, "form[action='/logout'] button")
    await wait_until(lambda: "/login" in browser.current_url, within=5, what="signed out")
    browser.get(f"{url}/calls/{record['id']}")
    assert "/login" in browser.current_url
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/", allow_redirects=False) as response,
    ):
        assert response.status == 303 and response.headers["Location"] == "/login"
    await daemon.assert_nothing_left()
