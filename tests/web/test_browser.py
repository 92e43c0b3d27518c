"""The inbox in headless Chromium over the sample inbox: live rows, voicemail, buttons, sign-out.

`make screenshot` runs this file with CALLKEEPER_SCREENSHOTS=docs: the signed-in inbox is saved as
docs/inbox.png for the README.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from callkeeper.inbox.model import InboxState
from tests.web.browser import chromium, click, screenshot, served, sign_in, wait_for
from tests.web.conftest import Site
from tests.web.sample import PASSWORD


def rows(driver: WebDriver) -> list[str]:
    """The inbox's rows (caller|line), read at once: the live list replaces rows under the test's feet."""
    keys = driver.execute_script(
        "return [...document.querySelectorAll('tr[data-key]')].map(r => r.dataset.key)"
    )
    return [str(key) for key in keys]


def audio_duration(driver: WebDriver) -> float:
    return float(
        driver.execute_script(
            "const a = document.getElementById('voicemail-audio');"
            "return a && a.readyState >= 1 ? a.duration : 0"
        )
        or 0
    )


def report_calls(driver: WebDriver) -> int:
    """The report's first tile: calls in the days shown."""
    figure = driver.execute_script("return document.querySelector('#report-tiles .figure').textContent")
    return int(str(figure).replace(",", ""))


def test_the_inbox_lives_in_the_browser(site: Site, tmp_path: Path) -> None:
    shots = tmp_path
    with served(site.app) as url, chromium() as driver:
        driver.get(f"{url}/calls/sample-0")
        wait_for(lambda: "/login" in driver.current_url, what="redirect to the sign-in")
        sign_in(driver, url, "alice", PASSWORD)
        assert driver.current_url == f"{url}/calls/sample-0"
        wait_for(lambda: audio_duration(driver) > 0, what="the voicemail's duration")
        driver.execute_script("document.getElementById('voicemail-audio').play()")
        wait_for(
            lambda: (
                driver.execute_script("return document.getElementById('voicemail-audio').currentTime") > 0
            ),
            what="the voicemail playing",
        )
        screenshot(driver, shots / "call.png")

        site.inbox.gone.add("sample-0")  # deleted meanwhile, e.g. from a phone's voicemail menu
        driver.refresh()
        wait_for(
            lambda: driver.find_element(By.ID, "voicemail-gone").is_displayed(), what="the message said gone"
        )
        assert not driver.find_element(By.ID, "voicemail-audio").is_displayed()

        driver.get(f"{url}/")
        wait_for(
            lambda: driver.find_element(By.ID, "live").get_attribute("data-state") == "live", what="live"
        )
        before = rows(driver)
        assert len(before) == 8
        added = time.monotonic()
        site.inbox.add_missed_call("+14155550999")
        wait_for(lambda: "+14155550999|Sales" in rows(driver), within=2, what="the new call in the open page")
        print(f"a new missed call appeared in {time.monotonic() - added:.2f} s")
        assert driver.execute_script("return document.querySelectorAll('tr.arrived').length") == 1

        click(driver, 'tr[data-key="+12125550188|Support"] button[aria-label^="Mark"]')
        wait_for(lambda: "+12125550188|Support" not in rows(driver), what="the handled row gone")
        item = next(item for item in site.inbox.items if item.caller == "+12125550188")
        assert item.state is InboxState.HANDLED and item.handled_by == "alice"

        click(driver, 'tr[data-key="+14155550123|Sales"] button.primary')
        wait_for(lambda: "Ringing your phone" in driver.find_element(By.ID, "toast").text, what="the toast")
        assert site.inbox.callbacks == [("sample-0", "alice")]

        driver.get(f"{url}/reports")
        wait_for(
            lambda: driver.find_element(By.ID, "live").get_attribute("data-state") == "live", what="live"
        )
        screenshot(driver, shots / "reports.png")
        calls_before = report_calls(driver)
        site.inbox.add_missed_call("+14155550998")
        wait_for(lambda: report_calls(driver) == calls_before + 1, within=2, what="the report's new call")

        click(driver, "form[action='/logout'] button")
        wait_for(lambda: "/login" in driver.current_url, what="signed out")
        driver.get(f"{url}/")
        assert "/login" in driver.current_url


def test_the_readme_screenshot(site: Site, tmp_path: Path) -> None:
    shots = Path(os.environ.get("CALLKEEPER_SCREENSHOTS") or tmp_path)
    with served(site.app) as url, chromium() as driver:
        sign_in(driver, url, "alice", PASSWORD)
        wait_for(
            lambda: driver.find_element(By.ID, "live").get_attribute("data-state") == "live", what="live"
        )
        screenshot(driver, shots / "inbox.png", full_height=False)
    assert (shots / "inbox.png").stat().st_size > 10_000
